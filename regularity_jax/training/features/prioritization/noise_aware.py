"""noise_aware: InfoBatch restricted to the examples a noise-separating score does not flag.

From epoch `noise_warmup` on, the `noise_fraction` of training examples with the highest
`noise_score` (a training-split score of `metrics.difficulty` computed from the running state:
forgetting, Toneva's rule, never learned first; memorization_loss, turn-over memorization; ...)
are excluded, then InfoBatch runs on the rest.
"""

from __future__ import annotations

import jax.numpy as jnp

from regularity_jax.estimators import turnover as turnover_estimator
from regularity_jax.metrics import difficulty
from regularity_jax.selection import online
from regularity_jax.training.features.base import running_score_needs
from regularity_jax.training.features.prioritization.infobatch import InfoBatch


class NoiseAware(InfoBatch):
  name = "noise_aware"

  @classmethod
  def validate(cls, config) -> None:
    super().validate(config)
    running_score_needs("prioritization_options.noise_score",
                        config.prioritization_options.noise_score)

  @classmethod
  def needs(cls, config):
    return super().needs(config) + running_score_needs(
        "prioritization_options.noise_score", config.prioritization_options.noise_score)

  def allowed(self, setup, state, epoch) -> jnp.ndarray:
    options = self.config.prioritization_options
    table = setup.tracker.summarize(state.train_stats)
    if "turnover" in state.features:
      table = {**table, **turnover_estimator.summarize(state.features["turnover"])}
    flags = difficulty.score(options.noise_score, table)[setup.train_ids]
    unflagged = online.noise_aware_mask(flags, options.noise_fraction)
    return state.active & jnp.where(epoch >= options.noise_warmup, unflagged, True)
