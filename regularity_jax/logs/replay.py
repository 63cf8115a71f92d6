"""Replaying logs (`logs.read`) through the kernels (`metrics`): tables as the engine's.

Each logged update (a step's batch, merged over ranks) is one kernel update, in logged order
and in increasing epoch order, so an id counts once per update exactly as in the loop. The
updates of an epoch run as a `lax.scan` over chunks of K padded batches ([K, B] ids, labels and
mask, [K, B, C] float32 logits, float16 logs cast on the host): one jitted call
and no host round trip per chunk; the state stays on the device and is fetched once per stream.

Imports JAX (unlike `regularity_jax.logs` itself).

  streams           (split, stream) of the log  ->  table of scores.npz
    ("train", "presentation")                       "train"       train/<key>
    ("train", "evaluation")                         "eval_train"  train/eval_<key>
    ("test", "evaluation")                          "test"        test/<key>

User statistics: any object (module, class instance) with the kernel interface of
`metrics` (`init(num_examples)`, `update(state, ids, logits, labels, mask)`, `summarize(state)`
-> {key: [N] array, "dropped": i32[]}), named by import path "package.module:attr" (or
"package.module" for a module). Its keys become columns like the built-in ones (seeds combine
them by `metrics.seeds.combine`: floats by the mean). Issue 34's part interface (direction,
seed rule, value when never seen) will take over this hook when it lands.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from regularity_jax.logs import reader as reader_lib
from regularity_jax.logs.reader import Logs
from regularity_jax.logs.format import LogError
from regularity_jax.metrics import tracker as tracker_lib

TABLES = {("train", "presentation"): "train", ("train", "evaluation"): "eval_train",
          ("test", "evaluation"): "test"}
RECORD_PREFIX = {"train": "train", "eval_train": "eval_train", "test": "test"}
CHUNK_ELEMENTS = 1 << 22  # at most these logits per jitted chunk (16 MB in float32)
CHUNK_ROWS = 1 << 13  # rows per jitted chunk, about


def _pow2(x: float) -> int:
  """The smallest power of two >= x (>= 1)."""
  return 1 << max(0, int(np.ceil(np.log2(max(x, 1)))))


def resolve_statistic(path: str):
  """The statistic named "package.module:attr" (or "package.module"); LogError otherwise."""
  module_name, _, attr = path.partition(":")
  try:
    value = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
      value = getattr(value, part)
  except (ImportError, AttributeError) as e:
    raise LogError(f"statistic {path!r} cannot be imported ({type(e).__name__}: {e}); pass "
                   "'package.module:name' of an object with init/update/summarize on "
                   "sys.path") from None
  missing = [m for m in ("init", "update", "summarize") if not callable(getattr(value, m, None))]
  if missing:
    raise LogError(f"statistic {path!r} has no {', '.join(missing)}; a statistic follows the "
                   "kernel interface of regularity_jax.metrics (init, update, summarize)")
  return value


@dataclasses.dataclass(frozen=True)
class Kernels:
  """The built-in kernels (a `metrics.Tracker`) and user statistics, updated together
  (hashable: equal ones share the jitted replay's compilation)."""
  tracker: tracker_lib.Tracker
  statistics: tuple[tuple[str, Any], ...] = ()

  def init(self):
    return {"tracker": self.tracker.init(),
            **{name: s.init(self.tracker.num_examples) for name, s in self.statistics}}

  def update(self, state, ids, logits, labels, mask):
    out = {"tracker": self.tracker.update(state["tracker"], ids, logits, labels, mask)}
    for name, s in self.statistics:
      out[name] = s.update(state[name], ids, logits, labels, mask)
    return out

  def summarize(self, state):
    table = self.tracker.summarize(state["tracker"])
    for name, s in self.statistics:
      for key, value in s.summarize(state[name]).items():
        if key == "dropped":
          table["dropped"] = jnp.maximum(table["dropped"], value)
        else:
          table.setdefault(key, value)
    return table


@functools.partial(jax.jit, static_argnums=0, donate_argnums=1)
def _scan(kernels: Kernels, carry, ids, labels, mask, logits):
  """carry: (state, loss sum, correct sum); ids, labels, mask: [K, B]; logits: [K, B, C]."""

  def body(carry, batch):
    state, loss, correct = carry
    i, y, m, z = batch
    z = z.astype(jnp.float32)
    y = y.astype(jnp.int32)
    state = kernels.update(state, i, z, y, m)
    nll = -jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], axis=1)[:, 0]
    loss = loss + jnp.sum(jnp.where(m, nll, 0.0))
    correct = correct + jnp.sum(m & (jnp.argmax(z, axis=-1) == y), dtype=jnp.int32)
    return (state, loss, correct), None

  carry, _ = jax.lax.scan(body, carry, (ids, labels, mask, logits))
  return carry


@functools.partial(jax.jit, static_argnums=0)
def _summarize(kernels: Kernels, state):
  return kernels.summarize(state)


def _chunks(epoch: reader_lib.Epoch):
  """Padded [K, B] / [K, B, C] chunks of an epoch's updates (K a power of two)."""
  sizes = epoch.sizes
  if not len(sizes):
    return
  width = int(max(sizes.max(), 1))
  per = max(1, CHUNK_ELEMENTS // (width * max(epoch.logits.shape[1], 1)))
  # K: about CHUNK_ROWS rows a call (a call costs ~0.1 ms), at most `per` (memory) and no more
  # batches than the epoch has; a power of two, so few shapes compile. The last chunk of an
  # epoch is padded to K with empty batches (a no-op update).
  k = min(_pow2(CHUNK_ROWS / width), _pow2(len(sizes)), 1 << int(np.log2(per)))
  starts = np.concatenate([[0], np.cumsum(sizes)])
  for first in range(0, len(sizes), k):
    last = min(first + k, len(sizes))
    lo, hi = starts[first], starts[last]
    chunk = sizes[first:last]
    # One dtype for every log (i32 labels, f32 logits): one compilation per chunk shape.
    if last - first == k and np.all(chunk == width):  # full batches: reshaped, cast
      ids = epoch.ids[lo:hi].reshape(k, width)
      labels = epoch.labels[lo:hi].reshape(k, width).astype(np.int32)
      logits = epoch.logits[lo:hi].reshape(k, width, -1).astype(np.float32)
      mask = np.ones((k, width), bool)
    else:
      batch = np.repeat(np.arange(last - first), chunk)
      pos = np.arange(hi - lo) - (starts[first:last] - lo)[batch]
      ids = np.zeros((k, width), np.int32)
      labels = np.zeros((k, width), np.int32)
      logits = np.zeros((k, width, epoch.logits.shape[1]), np.float32)
      mask = np.zeros((k, width), bool)
      ids[batch, pos], labels[batch, pos] = epoch.ids[lo:hi], epoch.labels[lo:hi]
      logits[batch, pos], mask[batch, pos] = epoch.logits[lo:hi], True
    yield ids, labels, mask, logits


@dataclasses.dataclass
class Replayed:
  """What `replay` gives the `Recorder`.

  Attributes:
    tables: {"train", "eval_train", "test"} -> one host table per seed (absent streams: []).
    seeds: the logged seeds, in order.
    records: one metrics.jsonl dict per epoch (1-based "epoch" in logged order, the logged
      value as "logged_epoch"): <table>_loss and <table>_accuracy over the epoch's rows, the
      mean over seeds (and "<key>_per_seed").
    ids, labels: split -> the distinct ids logged and their labels (sorted by id).
    rows: rows replayed; seconds: the replay's wall time (reading excluded).
  """
  tables: dict[str, list[dict[str, np.ndarray]]]
  seeds: list[int]
  records: list[dict[str, Any]]
  ids: dict[str, np.ndarray]
  labels: dict[str, np.ndarray]
  rows: int
  seconds: float


def replay(logs: Logs, *, kernels: Sequence[str] = tuple(tracker_lib.KERNELS),
           statistics: Sequence[str] = ()) -> Replayed:
  """Runs every logged stream through the kernels (see the module docstring)."""
  t0 = time.perf_counter()
  unknown = [k for k in logs.streams if (k[1], k[2]) not in TABLES]
  if unknown:
    raise LogError(f"{logs.directory} holds streams {unknown} (seed, split, stream); the "
                   f"replay scores {sorted(TABLES)}")
  user = tuple((path.rpartition(":")[2] or path, resolve_statistic(path)) for path in statistics)
  seeds = logs.seeds
  tables: dict[str, list] = {t: [] for t in TABLES.values()}
  per_epoch: dict[tuple[int, int], dict[str, list]] = {}
  rows = 0
  for table in TABLES.values():
    keys = [(s, split, stream) for (split, stream), t in TABLES.items() if t == table
            for s in seeds]
    present = [k for k in keys if k in logs.streams]
    if present and len(present) != len(seeds):
      raise LogError(f"the {table} stream is logged for seeds {[k[0] for k in present]} but "
                     f"the log has seeds {seeds}; log every stream for every seed, or keep "
                     "each seed's logs in a directory of their own")
    split = "test" if table == "test" else "train"
    machine = Kernels(tracker_lib.Tracker(int(logs.num_examples[split]), tuple(kernels)), user)
    for key in present:
      state = machine.init()
      for position, epoch in enumerate(logs.streams[key]):
        carry = (state, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))
        for chunk in _chunks(epoch):
          carry = _scan(machine, carry, *chunk)  # the carry is donated: updated in place
        state, n = carry[0], int(len(epoch.ids))
        rows += n
        stats = per_epoch.setdefault((position, epoch.epoch), {})
        if n:
          stats.setdefault(f"{table}_loss", []).append(carry[1] / n)
          stats.setdefault(f"{table}_accuracy", []).append(carry[2] / n)
      tables[table].append(jax.device_get(_summarize(machine, state)))
  records = []
  for (position, logged), stats in sorted(per_epoch.items(), key=lambda kv: kv[0][1]):
    record = {"epoch": len(records) + 1, "logged_epoch": int(logged)}
    for key, values in stats.items():
      values = [float(v) for v in jax.device_get(values)]
      record[key] = float(np.mean(values))
      if len(values) > 1:
        record[f"{key}_per_seed"] = values
    records.append(record)
  ids, labels = _examples(logs)
  tables = {t: [{k: np.asarray(v) for k, v in table.items()} for table in per_seed]
            for t, per_seed in tables.items()}
  return Replayed(tables=tables, seeds=seeds, records=_merge_records(records), ids=ids,
                  labels=labels, rows=rows, seconds=time.perf_counter() - t0)


def _merge_records(records):
  """Epochs logged under one number by several streams share one record."""
  out: dict[int, dict[str, Any]] = {}
  for r in records:
    out.setdefault(r["logged_epoch"], {}).update({k: v for k, v in r.items() if k != "epoch"})
  return [{"epoch": j + 1, **r} for j, (_, r) in enumerate(sorted(out.items()))]


def _examples(logs: reader_lib.Logs):
  """split -> distinct logged ids (sorted) and their label; LogError when an id was logged
  with two labels."""
  ids, labels = {}, {}
  for split in ("train", "test"):
    epochs = [e for (_, s, _), es in logs.streams.items() if s == split for e in es]
    if not epochs:
      continue
    all_ids = np.concatenate([e.ids for e in epochs]).astype(np.int64)
    all_labels = np.concatenate([e.labels for e in epochs]).astype(np.int64)
    table = np.full(int(logs.num_examples[split]), -1, np.int64)
    table[all_ids] = all_labels
    differ = table[all_ids] != all_labels
    if differ.any():
      first = int(all_ids[differ][0])
      raise LogError(f"{split} id {first} is logged with labels {int(table[first])} and "
                     f"{int(all_labels[differ][0])} in {logs.directory}; log the label each "
                     "example trains with (one per id)")
    seen = np.flatnonzero(table >= 0)
    ids[split], labels[split] = seen, table[seen]
  return ids, labels
