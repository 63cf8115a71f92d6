"""Static pruning: train on a subset chosen before training from a previous run's scores.

`pruning.fraction_kept < 1` keeps round(fraction_kept * N) training examples by
`pruning.rule` over `pruning.score` (a training-split score of `metrics.difficulty`, read
from `pruning.scores_path` and checked against this run's data by `runs.scores_file`), or at
random (`pruning.score=random`). The kept rows are `TrainState.active` at the start.
"""

from __future__ import annotations

import numpy as np

from regularity_jax.metrics import difficulty
from regularity_jax.runs import scores_file
from regularity_jax.selection import pruning as pruning_lib
from regularity_jax import registry
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.features.base import Feature
from regularity_jax.training.features.base import choice


class Pruning(Feature):
  name = "pruning"
  phase = "selection"
  block = "pruning"

  @classmethod
  def enabled(cls, config) -> bool:
    return float(config.pruning.fraction_kept) < 1.0

  @classmethod
  def validate(cls, config) -> None:
    cfg = config.pruning
    if not 0.0 < float(cfg.fraction_kept) <= 1.0:
      raise ConfigError(f"pruning.fraction_kept={cfg.fraction_kept} must be in (0, 1]")
    if not cls.enabled(config):
      return
    try:
      pruning_lib.RULE_REGISTRY.get(cfg.rule)
    except registry.PartError as e:
      raise ConfigError(str(e)) from None
    if cfg.score not in pruning_lib.score_names() and cfg.scores_path:
      try:  # a user statistic's score, declared in that file's provenance
        scores_file.load(cfg.scores_path, what="pruning.scores_path")
      except scores_file.ScoresFileError:
        pass  # the file's own problem is named where it is read
    choice("pruning.score", cfg.score, pruning_lib.score_names())
    choice("pruning.ties", cfg.ties, difficulty.TIES)
    if int(cfg.num_bins) < 1:
      raise ConfigError(f"pruning.num_bins={cfg.num_bins} must be >= 1 (the bins of rule ccs)")
    if cfg.score != "random" and not cfg.scores_path:
      raise ConfigError("pruning by a score needs --config.pruning.scores_path=RUN/scores.npz "
                        "(a finished run of the same dataset), or pruning.score='random'")

  def initial_active(self, dataset, active: np.ndarray) -> np.ndarray:
    cfg = self.config.pruning
    n = len(dataset.train)
    if cfg.score == "random":
      scores, rule = np.zeros(n, np.float32), "random"
    else:
      scores = scores_file.read_aligned(cfg.scores_path, cfg.score, dataset,
                                        what="pruning.scores_path",
                                        allow_partial=bool(cfg.allow_partial))
      rule = cfg.rule
    kept = pruning_lib.select(scores, fraction_kept=cfg.fraction_kept, rule=rule,
                              labels=dataset.train.labels, seed=cfg.seed, num_bins=cfg.num_bins,
                              ties=cfg.ties)
    mask = np.zeros(n, bool)
    mask[kept] = True
    return active & mask
