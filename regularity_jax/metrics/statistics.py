"""Tracker statistics as parts: the built-in kernels and user statistics by import path.

`--config.tracking.kernels` lists statistics: built-in names (`KERNEL_MODULES`) or user
statistics, 'package.module:Class' / 'path/to/file.py:Class'. A user statistic is a class
following `Statistic` (docs/parts.md). It states

  name         the name of its score (pruning.score, weighting.score, the report's grids)
  streams      which streams feed it: "presentations" (training steps), "eval_train",
               "eval_test" (the evaluation passes over each split)
  summary_keys the per-example keys `summarize` returns (each f32/i32/bool[N])
  score_key    the summary key that ranks examples ('' = no score)
  direction    "higher_is_harder" or "lower_is_harder" (of `score_key`)
  seeds        how seeds combine its score: "sum" or "mean" (`metrics.difficulty.combine`)
  never_seen   the value `summarize` gives an example never observed (NaN recommended)

and is built as `Class(block, run)`: `block`, its own options (`config.tracking.<name>`, a
ConfigDict, empty when absent), and `run`, the run-wide fields (`registry.RUN_WIDE`). Its
`init(num_examples)` returns a pytree whose arrays have a leading id axis of length N (scalar
counters such as `dropped` aside); `update(state, ids, logits, labels, mask)` follows SPEC.md's
kernel rules (masked rows change nothing, a repeated id counts once, out-of-range ids are
counted in `dropped` and never written: `metrics.indexing.select_rows`; no host sync, it runs
inside the jitted step); `summarize(state)` returns its summary keys and `dropped`.
`check` probes all of that on 4 ids before the run directory is claimed.

Its summary keys land in scores.npz (`train/<key>`, `train/eval_<key>`, `test/<key>` by stream),
its score in `metrics.difficulty` under `name` (so pruning, weighting and the report's grids
find it by name), and scores.npz's provenance records it (`declared`), so a later process (the
report command) knows the score without importing the code.
"""

from __future__ import annotations

import inspect
import math
from types import ModuleType
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from regularity_jax import registry
from regularity_jax.metrics import confidence
from regularity_jax.metrics import cumulative
from regularity_jax.metrics import difficulty
from regularity_jax.metrics import forgetting
from regularity_jax.metrics import losses
from regularity_jax.metrics import margins

STREAMS = ("presentations", "eval_train", "eval_test")
DIRECTIONS = ("higher_is_harder", "lower_is_harder")
KERNEL_MODULES: dict[str, ModuleType] = {
    "forgetting": forgetting,
    "cumulative": cumulative,
    "margins": margins,
    "confidence": confidence,
    "losses": losses,
}
_CONTRACT = "docs/parts.md (a statistic)"


class Statistic:
  """Base class of a user statistic (module docstring); override the class attributes and
  `init`, `update`, `summarize`."""
  name = ""
  streams: tuple[str, ...] = STREAMS
  summary_keys: tuple[str, ...] = ()
  score_key = ""
  direction = "higher_is_harder"
  seeds = "mean"
  never_seen = math.nan

  def __init__(self, block=None, run=None):
    self.block = block if block is not None else {}
    self.run = run if run is not None else {}

  def init(self, num_examples: int) -> Any:
    raise NotImplementedError

  def update(self, state, ids, logits, labels, mask=None) -> Any:
    raise NotImplementedError

  def summarize(self, state) -> dict[str, jnp.ndarray]:
    raise NotImplementedError


class KernelStatistic(Statistic):
  """A built-in kernel module (`metrics.forgetting`, ...) as a statistic fed by every stream;
  its scores are the built-in ones of `metrics.difficulty`."""

  def __init__(self, name: str, module: ModuleType):
    super().__init__()
    self.name, self.module = name, module
    self.summary_keys = tuple(module.SUMMARY_KEYS)

  def init(self, num_examples):
    return self.module.init(num_examples)

  def update(self, state, ids, logits, labels, mask=None):
    return self.module.update(state, ids, logits, labels, mask)

  def summarize(self, state):
    return self.module.summarize(state)


def _check_class(obj, spec: str):
  if not (inspect.isclass(obj) and all(callable(getattr(obj, m, None))
                                       for m in ("init", "update", "summarize"))):
    raise registry.PartError(f"statistic {spec!r} is a {type(obj).__name__}, not a class with "
                             f"init, update and summarize; see {_CONTRACT}")
  return obj


STATISTICS = registry.Registry(
    "statistic", "--config.tracking.kernels entry",
    {name: KernelStatistic(name, module) for name, module in KERNEL_MODULES.items()},
    check=_check_class)
# A user statistic's spec -> its built instance (the one the tracker of this process uses).
_BUILT: dict[str, Statistic] = {}


def build(spec: str, config=None, base_dir=None) -> Statistic:
  """The statistic `spec` names, built from its block (`config.tracking.<name>`) and the
  run-wide fields of `config`, checked (`check`) and its score registered in
  `metrics.difficulty`. A built-in is its kernel (its block: none)."""
  found = STATISTICS.get(spec, base_dir)
  if isinstance(found, KernelStatistic):
    return found
  import ml_collections  # pylint: disable=g-import-not-at-top  (the kernels need only jax)
  block = ml_collections.ConfigDict()
  if config is not None:
    tracking = config.get("tracking") or {}
    own = tracking.get(getattr(found, "name", "")) if hasattr(tracking, "get") else None
    if own is not None:
      block = ml_collections.ConfigDict(dict(own))
  run = registry.block_view(config) if config is not None else ml_collections.ConfigDict()
  try:
    stat = found(block, run)
  except Exception as e:  # pylint: disable=broad-except
    raise registry.PartError(f"statistic {spec!r} cannot be built as Class(block, run) "
                             f"({type(e).__name__}: {e}); see {_CONTRACT}") from None
  check(stat, spec)
  register_score(stat, spec)
  _BUILT[spec] = stat
  return stat


def get(spec: str) -> Statistic:
  """The statistic of `spec` as built in this process (`build`), a built-in, or a user one
  built with an empty block."""
  if spec in _BUILT:
    return _BUILT[spec]
  return build(spec) if spec not in STATISTICS or not isinstance(
      STATISTICS[spec], KernelStatistic) else STATISTICS[spec]


def check(stat: Statistic, spec: str) -> None:
  """PartError (one line) unless `stat` states what the contract asks and its kernel follows
  SPEC.md's rules on a probe of 4 ids under `jax.jit` (so a host sync fails here)."""
  def bad(what):
    raise registry.PartError(f"statistic {spec!r}: {what}; see {_CONTRACT}")
  name = getattr(stat, "name", "")
  if not isinstance(name, str) or not name.isidentifier():
    bad(f"name={name!r} must be an identifier (the score's name)")
  if name in KERNEL_MODULES or (name in difficulty.SCORES
                                and difficulty.SCORES[name].source != spec):
    bad(f"name={name!r} is taken by a built-in score or statistic; choose another")
  streams = tuple(getattr(stat, "streams", ()))
  if not streams or any(s not in STREAMS for s in streams):
    bad(f"streams={streams!r} must be a non-empty subset of {STREAMS}")
  keys = tuple(getattr(stat, "summary_keys", ()))
  if not keys or not all(isinstance(k, str) and k.isidentifier() and k != "dropped"
                         for k in keys):
    bad(f"summary_keys={keys!r} must name its per-example keys")
  if stat.score_key and stat.score_key not in keys:
    bad(f"score_key={stat.score_key!r} is not one of summary_keys {keys}")
  if stat.direction not in DIRECTIONS:
    bad(f"direction={stat.direction!r} must be one of {DIRECTIONS}")
  if stat.seeds not in difficulty.SEED_RULES:
    bad(f"seeds={stat.seeds!r} must be one of {difficulty.SEED_RULES}")
  n = 4
  try:
    state = stat.init(n)
    for leaf in jax.tree.leaves(state):
      if np.ndim(leaf) and np.shape(leaf)[0] != n:
        bad(f"init({n}) returned an array of shape {np.shape(leaf)}; every state array needs "
            f"a leading id axis of length N")
    ids = jnp.asarray([0, 0, 9, 1], jnp.int32)  # a repeat, an id out of range, a masked row
    logits = jnp.asarray([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.3, 0.2, 0.1]])
    labels = jnp.asarray([0, 1, 2, 0], jnp.int32)
    mask = jnp.asarray([True, True, True, False])
    jax.eval_shape(stat.update, state, ids, logits, labels, mask)  # traced: no host sync
    state = stat.update(state, ids, logits, labels, mask)
    jax.eval_shape(stat.summarize, state)
    table = stat.summarize(state)
  except registry.PartError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    bad(f"its kernel fails on a probe batch traced as under jax.jit ({type(e).__name__}: "
        f"{' '.join(str(e).split())[:160]})")
  missing = [k for k in keys if k not in table]
  if missing or "dropped" not in table:
    bad(f"summarize returned {sorted(table)}, missing {missing or ['dropped']}")
  if any(np.shape(table[k]) != (n,) for k in keys):
    bad(f"summarize must give every summary key the shape [N]; got "
        f"{ {k: np.shape(table[k]) for k in keys} }")
  if int(np.asarray(table["dropped"])) != 2:
    bad(f"on a batch with one repeated id and one id out of range, dropped is "
        f"{int(np.asarray(table['dropped']))}, not 2 (metrics.indexing.select_rows)")
  if stat.score_key:
    value = np.asarray(table[stat.score_key], np.float64)
    unseen = value[2:]  # id 1 was masked, ids 2-3 never in the batch
    expected = float(stat.never_seen)
    if not (np.all(np.isnan(unseen)) if math.isnan(expected) else np.all(unseen == expected)):
      bad(f"summarize gives never-seen examples {unseen.tolist()} in {stat.score_key!r}, not "
          f"never_seen={stat.never_seen}")


def _score_fn(key: str, direction: str, never_seen: float):
  def fn(table):
    value = difficulty._f32(table[key])  # pylint: disable=protected-access
    xp = difficulty._xp(value)  # pylint: disable=protected-access
    if not math.isnan(never_seen):
      value = xp.where(value == never_seen, xp.nan, value).astype(xp.float32)
    return value if direction == "higher_is_harder" else -value
  return fn


def declaration(stat: Statistic, spec: str) -> dict[str, Any]:
  """What scores.npz's provenance records of a user statistic's score."""
  return {"spec": spec, "key": stat.score_key, "streams": list(stat.streams),
          "direction": stat.direction, "seeds": stat.seeds,
          "never_seen": None if math.isnan(float(stat.never_seen)) else float(stat.never_seen),
          "definition": " ".join((type(stat).__doc__ or "").split())[:200]}


def register_declared(name: str, declared: Mapping[str, Any]) -> None:
  """Registers the score of a user statistic from its `declaration` (e.g. read back from a
  scores.npz's provenance)."""
  if not declared.get("key"):
    return
  streams = tuple(declared["streams"])
  split = "train" if ("presentations" in streams or "eval_train" in streams) else "test"
  stream = "eval_" if split == "train" and "presentations" not in streams else ""
  never_seen = declared.get("never_seen")
  never_seen = math.nan if never_seen is None else float(never_seen)
  difficulty.register(difficulty.Score(
      name, declared.get("definition") or f"user statistic {declared['spec']}", split, stream,
      (declared["key"],), declared["spec"], declared["seeds"], f"user: {declared['spec']}",
      _score_fn(declared["key"], declared["direction"], never_seen)))


def register_score(stat: Statistic, spec: str) -> None:
  register_declared(stat.name, declaration(stat, spec))
  if stat.score_key and stat.seeds == "sum":
    from regularity_jax.metrics import seeds  # pylint: disable=g-import-not-at-top
    seeds.USER_SUMMED.add(stat.score_key)


def record_sources(config, base_dir=None) -> None:
  """Records where each user statistic of `config.tracking.kernels` was found and the sha256
  of its file in the config (`tracking_sources`, so in config.json): a resume with other
  statistic code is refused as a changed config."""
  sources = {}
  for spec in config.tracking.kernels:
    if spec in KERNEL_MODULES:
      continue
    from regularity_jax.training import parts  # pylint: disable=g-import-not-at-top
    _, resolved, sha = parts.import_attr(spec, base_dir, what="statistic",
                                         field="tracking.kernels")
    sources[spec.replace(".", "_").replace("/", "_").replace(":", "_")] = {
        "spec": spec, "resolved": resolved, "sha256": sha}
  if sources:
    with config.unlocked():
      config.tracking_sources = sources


def declared(kernels) -> dict[str, dict[str, Any]]:
  """{name: declaration} of the user statistics among `kernels` built in this process."""
  out = {}
  for spec in kernels:
    stat = _BUILT.get(spec)
    if stat is not None and stat.score_key:
      out[stat.name] = declaration(stat, spec)
  return out


def feeds(stat: Statistic, stream: str | None) -> bool:
  return stream is None or stream in tuple(stat.streams)
