r"""The benchmark suite: every case in one process, one Markdown table.

  python -m benchmarks.suite --preset=h100 --mnist_dir=.data/mnist --out=benchmarks/RESULTS.md
  python -m benchmarks.suite --preset=cpu_smoke --out=/tmp/RESULTS_cpu.md   # checks it runs

Cases (issue "GPU speed"):
  1 resnet_step     ResNet-18 (CIFAR variant) train step on device data: bare (no kernels) vs
                    every training-stream kernel on; ratio = tracking overhead.
  2 full_epoch      a full epoch as users run it (train_and_evaluate): on-device crop+flip,
                    tracking, and the evaluation of the test split; batch 128 and 512.
  3 grand           GraNd (`metrics.grand`, vmap(grad) in chunks) over the training set, in
                    units of one training epoch.
  4 turnover        turn-over memorization (own + flipped eval passes) over the training set,
                    in units of one training epoch.
  5 mnist_epoch     Toneva's MNIST CNN and the small CNN, one epoch on MNIST, stepped on the
                    host vs the whole epoch in one program (`scan_epoch`).
  6 seeds           K seeds of the small CNN trained at once (`num_seeds=K`, vmap) vs K
                    sequential runs: throughput ratio.
  7 torch           the same ResNet-18 step in PyTorch (eager and torch.compile, bf16 autocast,
                    channels_last, data on the device, per-example statistics updated by index).

Timings: each case compiles first (not timed), then times `--repeats` runs and reports the
median; device work is awaited with block_until_ready. Data are synthetic (uniform noise) of
the real shapes unless --mnist_dir is given (case 5): throughput does not depend on pixels.
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
import platform
import statistics
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

_PRESET = flags.DEFINE_enum("preset", "cpu_smoke", ["cpu_smoke", "h100"], "Problem sizes.")
_OUT = flags.DEFINE_string("out", "benchmarks/RESULTS.md", "Markdown file to write.")
_CASES = flags.DEFINE_list("cases", ["1", "2", "3", "4", "5", "6", "7"], "Cases to run.")
_MNIST_DIR = flags.DEFINE_string("mnist_dir", "", "MNIST IDX files for case 5 (else synthetic).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions per measurement.")


@dataclasses.dataclass(frozen=True)
class Preset:
  n_train: int
  n_test: int
  resnet_width: int
  batches: tuple[int, ...]
  timed_steps: int
  grand_chunk: int
  mnist_n: int
  seeds: int
  dtype: str


PRESETS = {
    "h100": Preset(n_train=50_000, n_test=10_000, resnet_width=64, batches=(128, 512),
                   timed_steps=100, grand_chunk=256, mnist_n=60_000, seeds=8, dtype="bfloat16"),
    "cpu_smoke": Preset(n_train=1024, n_test=256, resnet_width=8, batches=(32, 64), timed_steps=4,
                        grand_chunk=32, mnist_n=2048, seeds=2, dtype="float32"),
}


def _median_time(fn, repeats: int) -> float:
  fn()  # compile / warm up
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def _train_config(model: str, batch: int, preset: Preset, **overrides):
  from regularity_jax.training import default_config  # pylint: disable=g-import-not-at-top
  c = default_config()
  c.model = model
  c.batch_size = batch
  c.eval_batch_size = 1000 if preset.n_test >= 1000 else preset.n_test
  c.dtype = preset.dtype
  c.learning_rate, c.momentum, c.nesterov, c.weight_decay = 0.1, 0.9, True, 5e-4
  c.progress_bar = False
  c.plots = False
  for key, value in overrides.items():
    node = c
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


class Bench:
  """Shared pieces: synthetic device data, a state and the fused epoch step of a model."""

  def __init__(self, preset: Preset):
    self.preset = preset
    self.rows: list[dict] = []

  def device_split(self, n, shape, num_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": jnp.asarray(rng.normal(size=(n,) + shape).astype(np.float32)),
            "label": jnp.asarray(rng.integers(0, num_classes, n).astype(np.int32)),
            "id": jnp.arange(n, dtype=jnp.int32), "weight": jnp.ones((n,), jnp.float32)}

  def state_and_steps(self, model: str, shape, batch: int, kernels, model_kwargs=None,
                      turnover=False, seed=0):
    from flax import nnx  # pylint: disable=g-import-not-at-top
    from regularity_jax import metrics, models  # pylint: disable=g-import-not-at-top
    from regularity_jax.training import optimizers, steps  # pylint: disable=g-import-not-at-top
    from regularity_jax.training.state import TrainState  # pylint: disable=g-import-not-at-top
    dtype = jnp.bfloat16 if self.preset.dtype == "bfloat16" else jnp.float32
    kwargs = dict(model_kwargs or {})
    if turnover:
      kwargs["turnover_sites"] = ("all",)
    m = models.create_model(model, num_classes=10, example_shape=shape, rngs=nnx.Rngs(seed),
                            dtype=dtype, **kwargs)
    graphdef, params, model_state = models.split(m)
    config = _train_config(model, batch, self.preset)
    steps_per_epoch = max(1, self.preset.n_train // batch)
    tx = optimizers.make_optimizer(config)
    tracker = metrics.Tracker(self.preset.n_train, kernels=kernels)
    state = TrainState(step=jnp.int32(0), epoch=jnp.int32(0), params=params,
                       model_state=model_state, opt_state=tx.init(params),
                       clock=optimizers.init_clock(config, steps_per_epoch, self.preset.n_train),
                       key=jax.random.key_data(jax.random.key(seed)),
                       active=jnp.ones(self.preset.n_train, bool), train_stats=tracker.init(),
                       eval_stats={})
    train_step = steps.make_train_step(graphdef, tx, tracker,
                                       optimizers.make_schedule(config, steps_per_epoch),
                                       turnover=turnover)
    epoch_step = steps.make_epoch_step(train_step, augment_images=len(shape) == 3)
    return graphdef, state, epoch_step

  def add(self, **row):
    self.rows.append(row)
    print(" | ".join(f"{k}={v}" for k, v in row.items()), flush=True)


def _epoch_matrices(n, batch, seed=0):
  from regularity_jax.data import batching  # pylint: disable=g-import-not-at-top
  positions, masks = batching.epoch_batches(jax.random.key(seed), n, batch)
  return positions, masks, jnp.ones(masks.shape, jnp.float32)


def case_resnet_step(b: Bench):
  """1: bare vs tracked ResNet-18 step; returns {batch: seconds per bare epoch}."""
  from regularity_jax import metrics  # pylint: disable=g-import-not-at-top
  from regularity_jax.training import steps  # pylint: disable=g-import-not-at-top
  p = b.preset
  split = b.device_split(p.n_train, (32, 32, 3))
  epoch_time = {}
  for batch in p.batches:
    positions, masks, rw = _epoch_matrices(p.n_train, batch)
    per_kind = {}
    for kind, kernels in (("bare", ()), ("tracked", tuple(metrics.KERNELS))):
      _, state, epoch_step = b.state_and_steps("resnet18", (32, 32, 3), batch, kernels,
                                               {"width": p.resnet_width})
      stepped = jax.jit(epoch_step)
      n_steps = min(p.timed_steps, positions.shape[0])

      def run(state=state, stepped=stepped, n_steps=n_steps):
        s, carry = state, steps.init_epoch_carry()
        for _ in range(n_steps):
          s, carry = stepped(s, carry, split, positions, masks, rw)
        return carry
      seconds = _median_time(run, _REPEATS.value)
      per_kind[kind] = seconds
      b.add(case="1 resnet_step", variant=kind, batch=batch,
            img_per_s=round(n_steps * batch / seconds), ratio="")
    b.rows[-1]["ratio"] = f"tracked/bare time {per_kind['tracked'] / per_kind['bare']:.3f}"
    epoch_time[batch] = per_kind["bare"] / n_steps * positions.shape[0]
  return epoch_time


def case_full_epoch(b: Bench):
  """2: train_and_evaluate epoch (augment + train + track + test eval), from metrics.jsonl."""
  from regularity_jax.training import train_and_evaluate  # pylint: disable=g-import-not-at-top
  p = b.preset
  with tempfile.TemporaryDirectory() as tmp:
    rng = np.random.default_rng(0)
    np.savez(pathlib.Path(tmp) / "cifar10.npz",
             x_train=rng.integers(0, 256, (p.n_train, 32, 32, 3), dtype=np.uint8),
             y_train=rng.integers(0, 10, p.n_train), x_test=rng.integers(
                 0, 256, (p.n_test, 32, 32, 3), dtype=np.uint8), y_test=rng.integers(0, 10, p.n_test))
    for batch in p.batches:
      config = _train_config("resnet18", batch, p, dataset="cifar10", data_dir=tmp, num_epochs=3,
                             augment=True, eval_every=1, checkpoint_every=3,
                             **{"model_kwargs.width": p.resnet_width})
      result = train_and_evaluate(config, pathlib.Path(tmp) / f"run{batch}")
      epochs = [r["train_time_s"] + r["eval_time_s"] for r in result.metrics[1:]]
      seconds = statistics.median(epochs)
      b.add(case="2 full_epoch", variant="augment+train+track+test eval", batch=batch,
            img_per_s=round(p.n_train / seconds), ratio=f"{seconds:.3f} s/epoch")


def case_grand(b: Bench, epoch_time):
  """3: GraNd over the training set, in training epochs."""
  from regularity_jax import metrics, models  # pylint: disable=g-import-not-at-top
  p = b.preset
  graphdef, state, _ = b.state_and_steps("resnet18", (32, 32, 3), p.batches[0], (),
                                         {"width": p.resnet_width})
  split = b.device_split(p.n_train, (32, 32, 3))

  def loss_fn(params, example):
    logits, _ = models.apply(graphdef, params, state.model_state, example["image"][None],
                             train=False)
    return -jax.nn.log_softmax(logits[0])[example["label"]]

  fn = jax.jit(lambda params, batch: metrics.grand(loss_fn, params, batch,
                                                   chunk_size=p.grand_chunk))
  batch = {"image": split["image"], "label": split["label"]}
  seconds = _median_time(lambda: fn(state.params, batch), _REPEATS.value)
  b.add(case="3 grand", variant=f"vmap(grad), chunks of {p.grand_chunk}", batch=p.n_train,
        img_per_s=round(p.n_train / seconds),
        ratio=f"{seconds / epoch_time[p.batches[0]]:.2f} training epochs")


def case_turnover(b: Bench, epoch_time):
  """4: turn-over memorization (own + flipped passes) over the training set, in epochs."""
  from regularity_jax.data import batching  # pylint: disable=g-import-not-at-top
  from regularity_jax.estimators import turnover  # pylint: disable=g-import-not-at-top
  from regularity_jax.training import steps  # pylint: disable=g-import-not-at-top
  p = b.preset
  graphdef, state, _ = b.state_and_steps("resnet18", (32, 32, 3), p.batches[0], (),
                                         {"width": p.resnet_width}, turnover=True)
  split = b.device_split(p.n_train, (32, 32, 3))
  positions, masks = batching.eval_batches(p.n_train, 1000 if p.n_train >= 1000 else p.n_train)
  evaluate = jax.jit(steps.make_turnover_evaluate(graphdef))
  stats = turnover.init(p.n_train, 10)
  seconds = _median_time(lambda: evaluate(state.params, state.model_state, state.key, stats,
                                          split, positions, masks).memorization, _REPEATS.value)
  b.add(case="4 turnover", variant="own + flipped eval passes", batch=p.n_train,
        img_per_s=round(p.n_train / seconds),
        ratio=f"{seconds / epoch_time[p.batches[0]]:.2f} training epochs")


def _mnist_split(b: Bench):
  p = b.preset
  if _MNIST_DIR.value:
    from regularity_jax import data  # pylint: disable=g-import-not-at-top
    ds = data.load_dataset("mnist", _MNIST_DIR.value, train_subset=min(p.mnist_n, 60_000))
    return {"image": jnp.asarray(ds.train.images), "label": jnp.asarray(ds.train.labels),
            "id": jnp.arange(len(ds.train), dtype=jnp.int32),
            "weight": jnp.ones((len(ds.train),), jnp.float32)}, "MNIST"
  return b.device_split(p.mnist_n, (28, 28, 1)), "synthetic MNIST-shaped"


def case_mnist_epoch(b: Bench):
  """5: one MNIST epoch of the Toneva CNN and the small CNN, stepped vs scanned."""
  from regularity_jax import metrics  # pylint: disable=g-import-not-at-top
  from regularity_jax.training import steps  # pylint: disable=g-import-not-at-top
  split, source = _mnist_split(b)
  n = split["label"].shape[0]
  for model, batch, kwargs in (("toneva_cnn", 64, {}), ("small_cnn", 128, {})):
    positions, masks, rw = _epoch_matrices(n, batch)
    _, state, epoch_step = b.state_and_steps(model, (28, 28, 1), batch, tuple(metrics.KERNELS),
                                             kwargs)
    stepped = jax.jit(epoch_step)
    scanned = jax.jit(steps.make_scanned_epoch(epoch_step))

    def run_stepped(state=state, stepped=stepped, positions=positions, masks=masks, rw=rw):
      s, carry = state, steps.init_epoch_carry()
      for _ in range(positions.shape[0]):
        s, carry = stepped(s, carry, split, positions, masks, rw)
      return carry

    def run_scanned(state=state, scanned=scanned, positions=positions, masks=masks, rw=rw):
      return scanned(state, steps.init_epoch_carry(), split, positions, masks, rw,
                     positions.shape[0])[1]
    for variant, fn in (("stepped", run_stepped), ("scanned", run_scanned)):
      seconds = _median_time(fn, _REPEATS.value)
      b.add(case="5 mnist_epoch", variant=f"{model} {variant} ({source})", batch=batch,
            img_per_s=round(n / seconds), ratio=f"{seconds:.3f} s/epoch")


def case_seeds(b: Bench):
  """6: K small-CNN seeds vmapped vs K sequential runs (one MNIST epoch each)."""
  from regularity_jax import metrics  # pylint: disable=g-import-not-at-top
  from regularity_jax.training import steps  # pylint: disable=g-import-not-at-top
  split, source = _mnist_split(b)
  n, k, batch = split["label"].shape[0], b.preset.seeds, 128
  positions, masks, rw = _epoch_matrices(n, batch)
  replicas = [b.state_and_steps("small_cnn", (28, 28, 1), batch, tuple(metrics.KERNELS),
                                seed=s) for s in range(k)]
  epoch_step = replicas[0][2]
  states = jax.tree.map(lambda *xs: jnp.stack(xs), *[r[1] for r in replicas])
  one = jax.jit(epoch_step)
  many = jax.jit(jax.vmap(epoch_step, (0, 0, None, 0, 0, 0)))
  stack = lambda x: jnp.stack([x] * k)  # pylint: disable=unnecessary-lambda-assignment
  carry_k = jax.tree.map(stack, steps.init_epoch_carry())
  stacked = [stack(positions), stack(masks), stack(rw)]

  def sequential():
    out = []
    for r in replicas:
      s, carry = r[1], steps.init_epoch_carry()
      for _ in range(positions.shape[0]):
        s, carry = one(s, carry, split, positions, masks, rw)
      out.append(carry)
    return out

  def vmapped():
    s, carry = states, carry_k
    for _ in range(positions.shape[0]):
      s, carry = many(s, carry, split, *stacked)
    return carry
  seq = _median_time(sequential, _REPEATS.value)
  vm = _median_time(vmapped, _REPEATS.value)
  b.add(case="6 seeds", variant=f"{k} sequential small_cnn runs ({source})", batch=batch,
        img_per_s=round(k * n / seq), ratio="")
  b.add(case="6 seeds", variant=f"{k} seeds vmapped", batch=batch, img_per_s=round(k * n / vm),
        ratio=f"{seq / vm:.2f}x the sequential throughput")


def case_torch(b: Bench):
  """7: the ResNet-18 step in PyTorch, for the side-by-side ratio."""
  try:
    from benchmarks import torch_resnet  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    b.add(case="7 torch", variant=f"skipped: {e}", batch="", img_per_s="", ratio="")
    return
  bf16 = b.preset.dtype == "bfloat16"
  print(f"7 torch settings: {torch_resnet.settings(bf16=bf16)}", flush=True)
  for batch in b.preset.batches:
    for compiled in (False, True):
      try:
        ips = torch_resnet.throughput(batch=batch, n=b.preset.n_train, width=b.preset.resnet_width,
                                      steps=b.preset.timed_steps, compiled=compiled, bf16=bf16)
      except Exception as e:  # pylint: disable=broad-except
        b.add(case="7 torch", variant=f"{'compiled' if compiled else 'eager'} failed: "
              f"{type(e).__name__}: {' '.join(str(e).split())[:120]}", batch=batch,
              img_per_s="", ratio="")
        continue
      b.add(case="7 torch", variant=f"ResNet-18 {'torch.compile' if compiled else 'eager'} + "
            f"per-example stats ({torch_resnet.settings(bf16=bf16)})", batch=batch,
            img_per_s=round(ips), ratio="")


def _header(preset_name: str, seconds: float) -> str:
  dev = jax.devices()[0]
  import flax  # pylint: disable=g-import-not-at-top
  return "\n".join([
      f"# Benchmarks ({preset_name} preset)", "",
      f"- date: {datetime.date.today().isoformat()}",
      f"- device: {dev.device_kind} x{jax.device_count()} ({dev.platform}); host "
      f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores",
      f"- jax {jax.__version__}, flax {flax.__version__}, python {sys.version.split()[0]}",
      f"- command: python -m benchmarks.suite --preset={preset_name}"
      + (f" --mnist_dir={_MNIST_DIR.value}" if _MNIST_DIR.value else ""),
      f"- median of {_REPEATS.value} timed runs after one warm-up; suite wall time {seconds:.0f} s",
      "", ""])


def main(argv):
  del argv
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO.
  t0 = time.perf_counter()
  b = Bench(PRESETS[_PRESET.value])
  cases = set(_CASES.value)
  epoch_time = {}
  if cases & {"1", "3", "4"}:
    epoch_time = case_resnet_step(b)
  if "2" in cases:
    case_full_epoch(b)
  if "3" in cases:
    case_grand(b, epoch_time)
  if "4" in cases:
    case_turnover(b, epoch_time)
  if "5" in cases:
    case_mnist_epoch(b)
  if "6" in cases:
    case_seeds(b)
  if "7" in cases:
    case_torch(b)
  from regularity_jax.sweeps.report import markdown_table  # pylint: disable=g-import-not-at-top
  text = _header(_PRESET.value, time.perf_counter() - t0) + markdown_table(
      b.rows, ["case", "variant", "batch", "img_per_s", "ratio"]) + "\n"
  pathlib.Path(_OUT.value).write_text(text)
  print(f"wrote {_OUT.value}")


if __name__ == "__main__":
  app.run(main)
