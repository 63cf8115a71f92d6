"""Evaluators: what a run measures besides training, one part each (`registry`, docs/parts.md).

`--config.evaluators` names the ones a run asks for (built-ins, or user evaluators by import
path 'package.module:Class' / 'path/to/file.py:Class'); a part brings its own evaluator: the
turn-over feature brings `turnover`, the `margins` statistic brings `margins`
(`owned_evaluators`). Each is built from its own config block (`block`, e.g. `margins`) plus
the run-wide fields (`registry.RUN_WIDE`), and they run in the order of their declared `phase`
(`registry.EVALUATOR_PHASES`), never in the order the config lists them. One named in
`evaluators` that does not apply (turnover with turn-over off) is refused in one line; the old
default list ("splits", "turnover", "margins", "summaries") reads as today's
(`training.migration`).

Each writes the metrics.jsonl keys listed here (`_per_seed` lists, one value per replica, come
with `num_seeds > 1`; the plain key is then the mean over replicas unless said otherwise).

  splits     every evaluation: an eval-mode pass over the training and the test split, which
             feeds the evaluation-stream kernels.
             eval_train_loss, eval_train_accuracy, test_loss, test_accuracy (+ _per_seed)
  turnover   every evaluation, with turn-over dropout: own and flipped sub-network passes over
             the training split (`estimators.turnover`).
             train_memorization_mean, train_memorization_loss_mean,
             train_generalization_error_mean; memorization_auroc_corrupted (AUROC of the loss
             form for the changed labels, or the corrupted images, when some are corrupted)
  margins    every evaluation, with the margins kernel: normalized margins of the latest
             evaluation (`margins.normalizer`).
             log_network_norm, margin_auc, train_margin_quantiles (list), test_margin_auc;
             scores.npz: train/normalized_margin, test/normalized_margin
  summaries  every epoch: means over the training (train_) and test (test_) rows of
             forgetting_events_mean, unforgettable_fraction, never_learned_fraction,
             last_margin_mean; with num_seeds > 1, train_unforgettable_fraction is learned in
             every seed and never forgotten in any (+ train_unforgettable_fraction_per_seed)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from regularity_jax import metrics
from regularity_jax import models
from regularity_jax import registry
from regularity_jax.training import hosts
from regularity_jax.training import programs
from regularity_jax.metrics import seeds
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.evaluator_base import Evaluator
from regularity_jax.training.features.turnover import TurnOverPass  # turn-over's own


def _check_normalizer(obj, spec):
  if not callable(obj):
    raise registry.PartError(f"margin normalizer {spec!r} must be a function "
                             "log_norm(params, model_state) -> f32[] (docs/parts.md)")
  return obj


# The built-ins are `models.norms.log_network_norm`'s branches; a user normalizer, named by
# import path ('package.module:fn', docs/parts.md), is `log_norm(params, model_state) -> f32[]`,
# the log of the network norm (jit-able). Resolved here, so models/ stays a leaf package.
NORMALIZER_REGISTRY = registry.Registry("margin normalizer", "--config.margins.normalizer",
                                        {k: k for k in models.norms.NORMALIZERS},
                                        check=_check_normalizer)


def normalizer(spec: str, base_dir=None):
  """The `kind` `models.norms.log_network_norm` takes for `--config.margins.normalizer`: a
  built-in's name, or the user function an import path names."""
  return NORMALIZER_REGISTRY.get(spec, base_dir)


class Splits(Evaluator):
  name = "splits"

  def __call__(self, setup, core, state, record):
    for name, split, prefix in (("train", setup.train_split, "eval_train_"),
                                ("test", setup.test_split, "test_")):
      stats, sums = state.eval_stats[name], None
      for chunk in setup.pipeline.eval_chunks(setup, name, split):  # one, or one per batch
        stats, chunk_sums = core.evaluate(state.params, state.model_state, stats, *chunk)
        sums = chunk_sums if sums is None else sums + chunk_sums
      state = state.replace(eval_stats={**state.eval_stats, name: stats})
      sums = setup.replicas.per_replica(hosts.fetch(sums))
      record[f"{prefix}loss"] = float(np.mean(sums[:, 0] / sums[:, 2]))
      record[f"{prefix}accuracy"] = float(np.mean(sums[:, 1] / sums[:, 2]))
      if setup.replicas.on:
        record[f"{prefix}accuracy_per_seed"] = (sums[:, 1] / sums[:, 2]).tolist()
    return state


class Margins(Evaluator):
  """Brought by the `margins` statistic; its block: `margins` (normalizer, quantiles)."""
  name = "margins"
  phase = "estimates"
  block = "margins"
  requires = "the 'margins' kernel: add it to --config.tracking.kernels"

  @classmethod
  def applies(cls, config) -> bool:
    return "margins" in config.tracking.kernels

  def build(self, setup, core) -> None:
    config = self.block_config

    def margin_summary(state):
      log_norm = models.norms.log_network_norm(state.params, state.model_state,
                                               kind=normalizer(config.normalizer),
                                               model=setup.margin_layout)
      out = {"log_network_norm": log_norm}
      for prefix, stats, ids in (("", state.eval_stats["train"], setup.train_ids),
                                 ("test_", state.eval_stats["test"], setup.test_ids)):
        normalized = stats["margins"].last_margin[ids] * jnp.exp(-log_norm)
        out[f"{prefix}margin_auc"] = metrics.margin_distribution.margin_auc(normalized)
        if not prefix:
          _, q = metrics.margin_distribution.margin_distribution_curve(
              normalized, num_points=config.quantiles)
          out["train_margin_quantiles"] = q
      return out

    self._summary = programs.jit("margin_summary", setup.replicas.lift(margin_summary))

  def __call__(self, setup, core, state, record):
    margins = hosts.fetch(self._summary(state))
    if setup.replicas.on:
      margins = {k: np.mean(v, axis=0) for k, v in margins.items()}
    record.update(jax.tree.map(lambda x: np.asarray(x).tolist(), margins))
    return state

  def scores(self, setup, state, columns):
    norm = hosts.fetch(models.norms.network_norm(state.params, state.model_state,
                                                    kind=normalizer(self.block_config.normalizer),
                                                    model=setup.margin_layout))
    out = {}
    for split, key in (("train", "train/eval_last_margin"), ("test", "test/last_margin")):
      if key in columns:
        out[f"{split}/normalized_margin"] = np.asarray(columns[key] / norm, np.float32)
    return out


class Summaries(Evaluator):
  name = "summaries"
  phase = "every_epoch"
  every_epoch = True

  def build(self, setup, core) -> None:
    tracker = setup.tracker

    def aggregates(state):
      return {**_aggregates("train_", tracker.summarize(state.train_stats), setup.train_ids),
              **_aggregates("test_", tracker.summarize(state.eval_stats["test"]),
                            setup.test_ids)}

    self._aggregates = programs.jit("summaries", setup.replicas.lift(aggregates))
    self._summarize = programs.jit("summarize", setup.replicas.lift(tracker.summarize))

  def __call__(self, setup, core, state, record):
    summaries = hosts.fetch(self._aggregates(state))
    record.update({k: float(np.mean(v)) for k, v in summaries.items()})
    if setup.replicas.on and "train_unforgettable_fraction" in summaries:
      record["train_unforgettable_fraction_per_seed"] = (
          summaries["train_unforgettable_fraction"].tolist())
      combined = seeds.combine(hosts.fetch(self._summarize(state.train_stats)))
      record["train_unforgettable_fraction"] = float(
          np.mean(combined["unforgettable"][setup.dataset.train.ids]))
    return state


def _aggregates(prefix: str, table: dict, ids: jnp.ndarray) -> dict[str, jnp.ndarray]:
  out = {}
  if "forgetting_events" in table:
    out[f"{prefix}forgetting_events_mean"] = jnp.mean(table["forgetting_events"][ids])
    out[f"{prefix}unforgettable_fraction"] = jnp.mean(table["unforgettable"][ids])
    out[f"{prefix}never_learned_fraction"] = jnp.mean(table["never_learned"][ids])
  if "aum" in table:
    out[f"{prefix}last_margin_mean"] = jnp.nanmean(table["last_margin"][ids])
  return out


BUILTINS = (Splits, TurnOverPass, Margins, Summaries)


def _check_class(obj, spec):
  if not (isinstance(obj, type) and callable(getattr(obj, "__call__", None))
          and getattr(obj, "phase", None) in registry.EVALUATOR_PHASES):
    raise registry.PartError(f"evaluator {spec!r} must be a class like "
                             "training.evaluators.Evaluator declaring a phase in "
                             f"{registry.EVALUATOR_PHASES} (docs/parts.md)")
  return obj


EVALUATORS = registry.Registry("evaluator", "--config.evaluators entry",
                               {e.name: e for e in BUILTINS}, check=_check_class)
# The defaults: the evaluation passes and the every-epoch summaries. `turnover` and `margins`
# come with the part that owns them (`owned_evaluators`).
DEFAULT = ("splits", "summaries")
# What owns which evaluator: (evaluator, whether `config` turns its owner on).
OWNED = (("turnover", lambda config: bool(config.turnover.enabled)),
         ("margins", lambda config: "margins" in config.tracking.kernels))


def owned_evaluators(config) -> tuple[str, ...]:
  """The evaluators the config's parts bring (turn-over: `turnover`; the margins kernel:
  `margins`)."""
  return tuple(name for name, on in OWNED if on(config))


def validate(config, base_dir=None) -> None:
  """ConfigError (one line) for an unknown evaluator or one that does not apply."""
  for spec in config.evaluators:
    try:
      cls = EVALUATORS.get(spec, base_dir)
    except registry.PartError as e:
      raise ConfigError(str(e)) from None
    if not cls.applies(config):
      raise ConfigError(f"evaluators entry {spec!r} needs {cls.requires or 'what it measures'}"
                        f", or remove it from --config.evaluators (default {DEFAULT}; "
                        "turnover and margins come with their feature and kernel)")


def enabled_evaluators(config, base_dir=None) -> list[Evaluator]:
  """Instances of the configured and owned evaluators, each built from its own block, in the
  order of their phases (`registry.EVALUATOR_PHASES`; within a phase, built-ins first)."""
  names = tuple(dict.fromkeys((*config.evaluators, *owned_evaluators(config))))
  classes = [EVALUATORS.get(n, base_dir) for n in names]
  parts = [cls.from_config(config) for cls in classes if cls.applies(config)]
  return registry.phase_order(parts, registry.EVALUATOR_PHASES,
                              tuple(e.name for e in BUILTINS))
