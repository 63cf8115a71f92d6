r"""The figures of docs/scaling.md (issue 18), measured on 4 fake CPU devices of one process.

  python -m benchmarks.scaling --out=benchmarks/RESULTS_scaling_cpu.md

(the module sets XLA_FLAGS=--xla_force_host_platform_device_count=4 before JAX starts.)

1. Bytes per example of the run's state, from the real pytrees: the quickstart's `Setup` and
   its initial `TrainState` (leaves with a dimension of the id space or of the training split),
   and the on-device training split of device mode.
2. Per-step time of the engine's fused train step (`steps.make_train_step` +
   `make_epoch_step`: gather, quickstart MLP 40-256-256-10, SGD, every tracker kernel) at a
   global batch of 128 sharded over the 4 devices, for id spaces of `--sizes` examples, with
   the tracker state replicated on every device or sharded along the id axis
   (`shard_statistics`): median of `--steps` steps after 5 warm-up steps; and the bytes one
   device holds of the tracker state.
3. The collectives XLA puts in the compiled step (from the HLO of each layout), with their
   operand bytes: what crosses devices per step.
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=4").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# pylint: disable=g-import-not-at-top,wrong-import-position
import datetime
import platform
import re
import statistics
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

_OUT = flags.DEFINE_string("out", "benchmarks/RESULTS_scaling_cpu.md", "Markdown file to write.")
_SIZES = flags.DEFINE_list("sizes", ["100000", "1000000", "4000000"], "Id-space sizes N.")
_STEPS = flags.DEFINE_integer("steps", 40, "Timed steps per case.")

BATCH = 128


def state_bytes_per_example() -> list[tuple[str, float, str]]:
  """(part, bytes per example, what) of the quickstart's real state and device split."""
  from experiments.configs import quickstart
  from regularity_jax.training import features as features_lib
  from regularity_jax.training.setup import Setup
  config = quickstart.get_config()
  config.num_devices = 1
  features = features_lib.enabled_features(config)
  setup = Setup.create(config, features)
  state = setup.initial_state()
  n_ids, n_train = setup.id_space, setup.n_train
  rows = []

  def per_example(tree, n):
    leaves = [x for x in jax.tree.leaves(tree) if x.ndim >= 1 and x.shape[0] == n]
    return sum(x.nbytes for x in leaves) / n, len(leaves)

  for name, tree in (("train_stats", state.train_stats),
                     ("eval_stats['train']", state.eval_stats["train"]),
                     ("eval_stats['test']", state.eval_stats["test"])):
    b, k = per_example(tree, n_ids)
    rows.append((f"TrainState.{name}", b, f"{k} arrays of [N], N = id space = {n_ids}"))
  b, k = per_example(state.active, n_train)
  rows.append(("TrainState.active", b, "bool[n_train]"))
  b, _ = per_example(setup.train_split, n_train)
  rows.append(("device split (device mode)", b,
               f"image f32{list(setup.dataset.example_shape)}, label, id, weight"))
  b, _ = per_example({k: v for k, v in setup.train_split.items() if k == "weight"}, n_train)
  rows.append(("device split (stream mode)", b, "weight only; the examples stream"))
  fixed = sum(x.nbytes for x in jax.tree.leaves((state.params, state.opt_state)))
  rows.append(("params + optimizer state", float("nan"), f"{fixed / 1e6:.2f} MB per device, "
               "independent of N"))
  return rows


LAYOUTS = ("replicated, XLA's choice", "replicated", "sharded")


def make_step(n: int, layout: str, mesh):
  """(jitted epoch step, state, carry, split, positions, masks, row weights) at id space n."""
  from experiments.configs import quickstart
  from flax import nnx
  from regularity_jax import metrics, models
  from regularity_jax.data import batching
  from regularity_jax.training import optimizers, sharding, steps
  from regularity_jax.training.state import TrainState
  config = quickstart.get_config()
  model = models.create_model("mlp", num_classes=10, example_shape=(40, 1),
                              rngs=nnx.Rngs(0), hidden=(256, 256))
  graphdef, params, model_state = models.split(model)
  tx = optimizers.make_optimizer(config)
  tracker = metrics.Tracker(n)
  replicated = sharding.replicated(mesh)
  sharded = layout == "sharded"
  constrain = {"sharded": sharding.IdSharded(mesh, n),
               "replicated": sharding.Replicated(mesh)}.get(layout)
  stats = tracker.init()
  stats = jax.device_put(stats, sharding.statistics_placement(mesh, stats, n) if sharded
                         else replicated)
  steps_per_epoch = 8
  state = TrainState(step=jnp.int32(0), epoch=jnp.int32(0), params=params,
                     model_state=model_state, opt_state=tx.init(params),
                     clock=optimizers.init_clock(config, steps_per_epoch, n),
                     key=jax.random.key_data(jax.random.key(0)),
                     active=jnp.ones(1, bool), train_stats=None, eval_stats={})
  state = jax.device_put(state, replicated).replace(train_stats=stats)
  train_step = steps.make_train_step(graphdef, tx, tracker,
                                     optimizers.make_schedule(config, steps_per_epoch),
                                     constrain=constrain)
  epoch_step = jax.jit(steps.make_epoch_step(train_step, augment_images=False),
                       donate_argnums=(0, 1))
  # A batch of 128 ids spread over the whole id space: positions into a 1,024-row split
  # whose ids are random in [0, n) (distinct), as a real epoch's batches are.
  rng = np.random.default_rng(0)
  ids = rng.choice(n, 1024, replace=False).astype(np.int32)
  split = jax.device_put({"image": rng.normal(size=(1024, 40, 1)).astype(np.float32),
                          "label": rng.integers(0, 10, 1024).astype(np.int32), "id": ids,
                          "weight": np.ones(1024, np.float32)}, replicated)
  positions, masks = batching.epoch_batches(jax.random.key(0), 1024, BATCH)
  rows = sharding.batch_sharded(mesh, axis=1)
  positions, masks = jax.device_put((positions, masks), rows)
  row_weights = jax.device_put(jnp.ones(masks.shape, jnp.float32), rows)
  carry = jax.device_put(steps.init_epoch_carry(), replicated)
  return epoch_step, state, carry, split, positions, masks, row_weights


def collectives(compiled_text: str) -> str:
  """The cross-device ops of an HLO module and their result bytes, e.g. 'all-reduce x3
  (1.1 MB)'."""
  sizes = {"f32": 4, "s32": 4, "u32": 4, "pred": 1, "f16": 2, "bf16": 2, "s8": 1, "u8": 1}
  found = {}
  for line in compiled_text.splitlines():
    m = re.search(r" (all-reduce|all-gather|reduce-scatter|all-to-all|collective-permute)"
                  r"(-start)?\(", line)
    if not m or "=" not in line[:m.start()]:
      continue
    op, nbytes = m.group(1), 0
    result = line[:m.start()].split("=", 1)[1]  # the result shape (a tuple for combined ops)
    for dtype, dims in re.findall(r"(\w+)\[([\d,]*)\]", result):
      count = int(np.prod([int(d) for d in dims.split(",") if d])) if dims else 1
      nbytes += count * sizes.get(dtype, 4)
    k, b = found.get(op, (0, 0))
    found[op] = (k + 1, b + nbytes)
  return ", ".join(f"{op} x{k} ({b / 1e3:.1f} kB)" for op, (k, b) in sorted(found.items())) or "none"


def time_steps(n: int, layout: str, mesh, timed: int):
  fn, state, carry, split, positions, masks, rw = make_step(n, layout, mesh)
  text = fn.lower(state, carry, split, positions, masks, rw).compile().as_text()
  for _ in range(5):
    state, carry = fn(state, carry, split, positions, masks, rw)
    carry = {**carry, "row": carry["row"] % positions.shape[0]}
  jax.block_until_ready(state)
  times = []
  for _ in range(timed):
    t0 = time.perf_counter()
    state, carry = fn(state, carry, split, positions, masks, rw)
    jax.block_until_ready(state.train_stats)
    times.append(time.perf_counter() - t0)
    carry = {**carry, "row": carry["row"] % positions.shape[0]}
  leaf = state.train_stats["forgetting"].forgetting_events
  per_device = sum(x.addressable_shards[0].data.nbytes
                   for x in jax.tree.leaves(state.train_stats))
  return statistics.median(times), per_device, leaf.sharding.shard_shape(leaf.shape), \
      collectives(text)


def cpu_name() -> str:
  try:
    for line in open("/proc/cpuinfo"):
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def main(argv):
  del argv
  from regularity_jax.training import sharding
  assert jax.device_count() == 4, jax.devices()
  mesh = sharding.make_mesh(4)
  lines = ["# Scaling figures on 4 fake CPU devices (docs/scaling.md)", "",
           f"- **date**: {datetime.date.today().isoformat()}",
           f"- **hardware**: {cpu_name()}, "
           f"{os.cpu_count()} CPU cores (shared), 4 fake XLA CPU devices "
           "(--xla_force_host_platform_device_count=4), one process",
           f"- **versions**: Python {platform.python_version()}, jax {jax.__version__}, "
           f"numpy {np.__version__}",
           "- **command**: `python -m benchmarks.scaling`", "",
           "## 1. Bytes per example (quickstart's real state)", "",
           "| part | bytes per example | what |", "|---|---|---|"]
  for part, b, what in state_bytes_per_example():
    lines.append(f"| {part} | {'-' if b != b else f'{b:.1f}'} | {what} |")
  lines += ["", f"## 2. Train step, global batch {BATCH}, replicated vs id-sharded statistics",
            "", "| N (id space) | layout | median step ms | tracker bytes per device | "
            "shard shape | collectives in the step |", "|---|---|---|---|---|---|"]
  for n in (int(s) for s in _SIZES.value):
    for layout in LAYOUTS:
      seconds, per_device, shape, comms = time_steps(n, layout, mesh, _STEPS.value)
      row = (f"| {n:,} | {layout} | {seconds * 1e3:.2f} | "
             f"{per_device / 1e6:.1f} MB | {shape} | {comms} |")
      print(row, flush=True)
      lines.append(row)
  pathlib_out = os.path.abspath(_OUT.value)
  with open(pathlib_out, "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
