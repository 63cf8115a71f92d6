"""infobatch: Qin et al. (ICLR 2024, arXiv 2303.04947).

Each epoch drops a random `infobatch_ratio` of the examples whose last loss is below the mean,
scales the kept ones by 1 / (1 - r), and trains on everything from `infobatch_anneal` of
training on (`selection.online.infobatch_plan`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from regularity_jax.data import batching
from regularity_jax.selection import online
from regularity_jax.training.features.base import statistic_need
from regularity_jax.training.features.prioritization.base import Prioritization
from regularity_jax.training.features.prioritization.base import epoch_key
from regularity_jax.training.features.prioritization.base import last_losses


class InfoBatch(Prioritization):
  name = "infobatch"
  reads = ("prioritization",)
  uses_example_weights = True

  replicas_differ = True

  @classmethod
  def needs(cls, config):
    return [statistic_need("losses", f"prioritization={cls.name!r}")]

  def allowed(self, setup, state, epoch) -> jnp.ndarray:
    """bool[n_train] rows InfoBatch may draw from."""
    del setup, epoch
    return state.active

  def plan(self, setup, state, epoch) -> dict:
    config = self.config
    options = config.prioritization_options
    key = epoch_key(state, epoch)
    last_loss, seen = last_losses(setup, state)
    allowed = self.allowed(setup, state, epoch)
    active, weights = online.infobatch_plan(key, last_loss, seen & allowed,
                                            options.infobatch_ratio, epoch, config.num_epochs,
                                            options.infobatch_anneal)
    active = active & allowed
    positions, masks = batching.epoch_batches(jax.random.fold_in(key, 1), setup.n_train,
                                              config.batch_size, active)
    return {"positions": positions, "masks": masks, "row_weights": jnp.ones(masks.shape),
            "example_weights": jnp.where(active, weights, 0.0), "num_active": jnp.sum(active)}
