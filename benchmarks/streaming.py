r"""Stream against device input (issue 17): training throughput and what lives on the device.

  python -m benchmarks.streaming --mnist_dir=../shared/data/mnist \
      --cifar_dir=../shared/data/cifar10_jpeg_q75 --out=benchmarks/RESULTS_streaming_cpu.md

Each case runs `train_and_evaluate` twice, `--config.input_pipeline=device` and `=stream`, with
the same config (seed 0, `--epochs` epochs, an evaluation of both splits every epoch):
  mnist    Toneva's MNIST protocol (experiments/configs/mnist_toneva.py: toneva_cnn, batch 64)
           on a `--mnist_train`-example subset of the IDX files
  cifar10  the small CNN, batch 128, crop+flip on the device, on a `--cifar_train`-example
           subset of CIFAR-10 JPEG q75 (image folder)
Throughput: training examples per second of the epochs after the first (the first compiles),
median over them, from metrics.jsonl's train_time_s; eval: seconds of the evaluation of both
splits, likewise. `device MB`: the bytes of every live device array at the end of the last
epoch (jax.live_arrays() created by the run: state, per-example statistics, the streamed rows in
flight, and in device mode the splits).
Both modes give the same numbers (tests/test_streaming.py): the check column says whether the
two runs' scores.npz agree here too.
"""

from __future__ import annotations

import datetime
import gc
import pathlib
import platform
import statistics
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax
import numpy as np

_OUT = flags.DEFINE_string("out", "benchmarks/RESULTS_streaming_cpu.md", "Markdown file to write.")
_MNIST = flags.DEFINE_string("mnist_dir", "../shared/data/mnist", "MNIST IDX files.")
_CIFAR = flags.DEFINE_string("cifar_dir", "../shared/data/cifar10_jpeg_q75",
                             "CIFAR-10 JPEG image folder archive.")
_MNIST_TRAIN = flags.DEFINE_integer("mnist_train", 10_000, "MNIST training examples (0 = all).")
_CIFAR_TRAIN = flags.DEFINE_integer("cifar_train", 5_000, "CIFAR-10 training examples (0 = all).")
_TEST = flags.DEFINE_integer("test", 2_000, "Test examples of each dataset.")
_EPOCHS = flags.DEFINE_integer("epochs", 3, "Epochs per run (the first is not timed).")
_NOTE = flags.DEFINE_string("note", "", "A sentence on the machine's load, for the header.")


def _config(case: str, mode: str):
  from experiments.configs import mnist_toneva  # pylint: disable=g-import-not-at-top
  from regularity_jax.training import default_config  # pylint: disable=g-import-not-at-top
  if case == "mnist":
    c = mnist_toneva.get_config()
    c.data_dir, c.train_subset = _MNIST.value, _MNIST_TRAIN.value
  else:
    c = default_config()
    c.dataset, c.data_dir, c.model = "cifar10", _CIFAR.value, "small_cnn"
    c.train_subset, c.batch_size, c.augment = _CIFAR_TRAIN.value, 128, True
    c.learning_rate, c.momentum = 0.05, 0.9
  c.test_subset, c.num_epochs, c.eval_every = _TEST.value, _EPOCHS.value, 1
  c.checkpoint_every, c.input_pipeline = _EPOCHS.value, mode
  c.progress_bar = c.plots = False
  return c


def _run(case: str, mode: str, workdir: pathlib.Path) -> dict:
  from regularity_jax.training import loop  # pylint: disable=g-import-not-at-top
  from regularity_jax.training import train_and_evaluate  # pylint: disable=g-import-not-at-top
  device_bytes = []
  original = loop.train_epoch
  gc.collect()
  earlier = jax.live_arrays()  # earlier runs' leftovers, held so that their ids stay theirs
  before = {id(a) for a in earlier}

  def probed(*args, **kwargs):
    out = original(*args, **kwargs)
    gc.collect()
    device_bytes.append(sum(a.nbytes for a in jax.live_arrays() if id(a) not in before))
    return out

  loop.train_epoch = probed
  try:
    t0 = time.perf_counter()
    result = train_and_evaluate(_config(case, mode), workdir)
    wall = time.perf_counter() - t0
  finally:
    loop.train_epoch = original
  timed = result.metrics[1:] or result.metrics
  return {"result": result, "wall": wall, "device_mb": device_bytes[-1] / 2**20,
          "img_per_s": statistics.median(r["examples_presented"] / r["train_time_s"]
                                         for r in timed),
          "eval_s": statistics.median(r.get("eval_time_s", float("nan")) for r in timed),
          "n_train": len(result.scores["train/example_id"])}


def _same(a, b) -> str:
  for key, x in a.scores.items():
    x, y = np.asarray(x), np.asarray(b.scores[key])
    ok = (np.allclose(x, y, atol=1e-6, rtol=0, equal_nan=True) if x.dtype.kind in "fc"
          else np.array_equal(x, y))
    if not ok:
      return f"differ ({key})"
  return "identical ints, floats within 1e-6"


def main(argv):
  del argv
  import flax  # pylint: disable=g-import-not-at-top
  import grain  # pylint: disable=g-import-not-at-top
  t0 = time.perf_counter()
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for case in ("mnist", "cifar10"):
      runs = {mode: _run(case, mode, pathlib.Path(tmp) / f"{case}_{mode}")
              for mode in ("device", "stream")}
      check = _same(runs["device"]["result"], runs["stream"]["result"])
      for mode, r in runs.items():
        ratio = r["img_per_s"] / runs["device"]["img_per_s"]
        rows.append(f"| {case} | {r['n_train']} | {mode} | {r['img_per_s']:.0f} | {ratio:.2f} | "
                    f"{r['eval_s']:.2f} | {r['device_mb']:.1f} | {r['wall']:.0f} | {check} |")
        print(rows[-1], flush=True)
  devices = jax.devices()
  lines = [
      "# Stream against device input (CPU)", "",
      f"- date: {datetime.date.today().isoformat()}",
      f"- device: {devices[0].platform} x{len(devices)} ({devices[0].device_kind}); host "
      f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores",
      f"- jax {jax.__version__}, flax {flax.__version__}, grain "
      f"{getattr(grain, '__version__', '?')}, python {platform.python_version()}",
      f"- command: python -m benchmarks.streaming {' '.join(sys.argv[1:])}",
      f"- seed 0, one run per mode and case; {_EPOCHS.value} epochs, median over epochs 2.."
      f"{_EPOCHS.value}; {_TEST.value} test examples evaluated with the training split every "
      f"epoch; suite wall time {time.perf_counter() - t0:.0f} s",
  ]
  if _NOTE.value:
    lines.append(f"- {_NOTE.value}")
  lines += ["", "| case | n_train | input | train img/s | vs device | eval s | device MB | "
                "wall s | stream vs device scores |",
            "|---|---|---|---|---|---|---|---|---|", *rows, ""]
  pathlib.Path(_OUT.value).write_text("\n".join(lines))
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
