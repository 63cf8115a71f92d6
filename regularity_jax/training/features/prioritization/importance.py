"""importance: loss-proportional importance sampling (the method Hu et al. 2021 test).

Each epoch draws ceil(N / B) batches with replacement, p_i proportional to the last
presentation loss of i, mixed with uniform by `is_smoothing` (unseen examples count as the
largest loss), reweighted by 1 / (N p_i) when `is_reweight` (unbiased) or not (the biased
variant Hu et al. also test). A repeated id within a batch is one presentation for the metric
kernels; the gradient uses every copy.
"""

from __future__ import annotations

import jax.numpy as jnp

from regularity_jax.data import batching
from regularity_jax.selection import online
from regularity_jax.training.features.base import statistic_need
from regularity_jax.training.features.prioritization.base import Prioritization
from regularity_jax.training.features.prioritization.base import epoch_key
from regularity_jax.training.features.prioritization.base import last_losses


class Importance(Prioritization):
  name = "importance"
  reads = ("prioritization",)

  @classmethod
  def needs(cls, config):
    return [statistic_need("losses", f"prioritization={cls.name!r}")]

  def plan(self, setup, state, epoch) -> dict:
    options, batch = self.config.prioritization_options, self.config.batch_size
    last_loss, _ = last_losses(setup, state)
    steps_ = batching.num_steps(setup.n_train, batch)
    probs = online.importance_probabilities(last_loss, options.is_smoothing, mask=state.active)
    idx = online.sample_indices(epoch_key(state, epoch), probs, steps_ * batch)
    w = (online.importance_weights(probs, idx, population=jnp.sum(state.active))
         if options.is_reweight else jnp.ones(idx.shape))
    shape = (steps_, batch)
    return {"positions": idx.reshape(shape), "masks": jnp.ones(shape, bool),
            "row_weights": w.reshape(shape),
            "example_weights": jnp.ones((setup.n_train,), jnp.float32),
            "num_active": jnp.int32(steps_ * batch)}
