"""uniform: every active example once per epoch, shuffled (the default)."""

from __future__ import annotations

from regularity_jax.training.features.prioritization.base import Prioritization
from regularity_jax.training.features.prioritization.base import shuffled_plan


class Uniform(Prioritization):
  name = "uniform"

  def plan(self, setup, state, epoch) -> dict:
    return shuffled_plan(setup, state, epoch, self.config.batch_size)
