"""Difficulty-based loss weighting (idea D): `w_i = g(difficulty rank of i)`.

`weighting.scheme` (uniform, easy_first, hard_first, medium_first, self_paced; formulas in
`regularity_jax.weighting.schemes`) over the ranks of `weighting.score`, a training-split
score of `metrics.difficulty`, taken either from a previous run's scores.npz
(`weighting.scores_path`, checked against this run's data; fixed for the whole run) or from
this run's running state, recomputed at the start of every epoch from `weighting.start_epoch`
on. The weights multiply each example's loss (normalized to mean 1).
"""

from __future__ import annotations

import numpy as np

from regularity_jax import registry
from regularity_jax import weighting as weighting_lib
from regularity_jax.estimators import turnover as turnover_estimator
from regularity_jax.metrics import difficulty
from regularity_jax.runs import scores_file
from regularity_jax.training import programs
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.features.base import Feature
from regularity_jax.training.features.base import choice
from regularity_jax.training.features.base import running_score_needs


def scheme_weights(config, ranks, progress):
  w = config.weighting
  return weighting_lib.weights(w.scheme, ranks, temperature=w.temperature, progress=progress,
                               pace_start=w.pace_start, pace_end=w.pace_end)


class Weighting(Feature):
  name = "weighting"
  phase = "weighting"
  block = "weighting"
  # (the statistic or feature its score needs: `needs`)

  @classmethod
  def enabled(cls, config) -> bool:
    return config.weighting.scheme != "uniform"

  @classmethod
  def running(cls, config) -> bool:
    return cls.enabled(config) and not config.weighting.scores_path

  @classmethod
  def validate(cls, config) -> None:
    try:
      weighting_lib.schemes.SCHEME_REGISTRY.get(config.weighting.scheme)
    except registry.PartError as e:
      raise ConfigError(str(e)) from None
    choice("weighting.score", config.weighting.score, difficulty.TRAIN_SCORES)
    if cls.running(config):
      running_score_needs("weighting.score", config.weighting.score)

  @classmethod
  def needs(cls, config):
    if not cls.running(config):
      return []
    return running_score_needs("weighting.score", config.weighting.score)

  @classmethod
  def replica_clash(cls, config) -> str | None:
    return "running weighting" if cls.running(config) else None

  def initial_weights(self, dataset, weights: np.ndarray) -> np.ndarray:
    if self.running(self.config):
      return weights
    aligned = scores_file.read_aligned(self.config.weighting.scores_path,
                                       self.config.weighting.score, dataset,
                                       what="weighting.scores_path",
                                       allow_partial=bool(self.config.weighting.allow_partial))
    ranks = weighting_lib.difficulty_rank(aligned)
    return np.asarray(scheme_weights(self.config, ranks, progress=0.0))

  def build(self, setup, core) -> None:
    config = self.config

    def weights_from_state(state, progress):
      table = dict(setup.tracker.summarize(state.train_stats))
      if "turnover" in state.features:
        table.update(turnover_estimator.summarize(state.features["turnover"]))
      score = difficulty.score(config.weighting.score, table)[setup.train_ids]
      return scheme_weights(config, weighting_lib.difficulty_rank(score), progress)

    self._weights = programs.jit("weights_from_state", weights_from_state)

  def epoch_split(self, setup, state, epoch: int, split: dict) -> dict:
    if not self.running(self.config) or epoch < self.config.weighting.start_epoch:
      return split
    progress = setup.put(np.float32(epoch / self.config.num_epochs))
    return {**split, "weight": self._weights(state, progress)}
