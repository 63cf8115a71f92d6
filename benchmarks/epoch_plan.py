r"""The epoch plans' cost (docs/scaling.md, "The epoch plan at scale"), on fake CPU devices.

  python -m benchmarks.epoch_plan --out=benchmarks/RESULTS_epoch_plan_cpu.md

(the module sets XLA_FLAGS=--xla_force_host_platform_device_count=4 before JAX starts.)

For N training examples and a global batch B, each plan (`batching.epoch_batches`, the default
`epoch_plan=permutation`, and `batching.bijection_batches`, `epoch_plan=bijection`) is compiled
with its [S, B] outputs column-sharded over D devices as the engine does (D = 1 and 4): the
median wall time of `--repeats` calls after one warm-up, the temporary bytes XLA allocates per
device (`memory_analysis().temp_size_in_bytes`), the largest array in the per-device program,
and whether the program sorts.
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=4").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import datetime
import platform
import re
import statistics
import time

import jax
import numpy as np

from regularity_jax.data import batching

PLANS = {"permutation": batching.epoch_batches, "bijection": batching.bijection_batches}


def cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()


def measure(plan, n: int, batch: int, devices: int, repeats: int) -> dict:
  mesh = jax.make_mesh((devices,), ("data",), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=jax.devices()[:devices])
  rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "data"))
  fn = jax.jit(lambda key: plan(key, n, batch), out_shardings=(rows, rows))
  compiled = fn.lower(jax.random.key(0)).compile()
  text = compiled.as_text()
  sizes = [int(np.prod([int(d) for d in dims.split(",")]))
           for dims in re.findall(r"[suf]32\[([0-9,]+)\]", text)]
  times = []
  for epoch in range(repeats + 1):
    key = jax.random.fold_in(jax.random.key(0), epoch)
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(key))
    times.append(time.perf_counter() - t0)
  return {"ms": 1e3 * statistics.median(times[1:]),
          "temp_mb": compiled.memory_analysis().temp_size_in_bytes / 1e6,
          "largest": max(sizes), "sorts": " sort(" in text or "sort." in text}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="100000,1000000")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--out", default="")
  args = parser.parse_args()
  load = os.getloadavg()
  lines = [f"# Epoch plans: {datetime.date.today()}, {cpu_model()}, "
           f"{os.cpu_count()} CPU cores (shared), load average {load[0]:.1f} at the start, "
           f"jax {jax.__version__}, batch {args.batch}", "",
           "| N | plan | devices | median ms per epoch plan | temp MB per device | "
           "largest array per device (elements) | sorts |", "|---|---|---|---|---|---|---|"]
  for n in (int(s) for s in args.sizes.split(",")):
    for devices in (1, 4):
      for name, plan in PLANS.items():
        r = measure(plan, n, args.batch, devices, args.repeats)
        lines.append(f"| {n:,} | {name} | {devices} | {r['ms']:.1f} | {r['temp_mb']:.2f} | "
                     f"{r['largest']:,} | {'yes' if r['sorts'] else 'no'} |")
        print(lines[-1], flush=True)
  load = os.getloadavg()
  lines.append(f"\nLoad average at the end: {load[0]:.1f}.")
  text = "\n".join(lines) + "\n"
  if args.out:
    with open(args.out, "w") as f:
      f.write(text)
  print(text)


if __name__ == "__main__":
  main()
