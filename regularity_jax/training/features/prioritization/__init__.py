"""Prioritization methods, one module each, picked by `--config.prioritization`.

  uniform             every active example once per epoch, shuffled (the default)
  selective_backprop  Jiang et al. 2019: backprop the candidates with the highest loss CDF
  importance          loss-proportional sampling with replacement (Hu et al. 2021)
  infobatch           Qin et al. 2024: drop a share of below-mean-loss examples, rescale
  noise_aware         InfoBatch on the examples a noise score does not flag
  rho_loss            Mindermann et al. 2022: backprop the candidates with the highest loss
                      minus an irreducible loss (a model trained on the holdout split)

Each epoch's record in metrics.jsonl says how many examples were really backpropagated
(`examples_backpropagated`) and forwarded (`examples_forwarded`), and its wall time.
"""

from regularity_jax.training.features.prioritization.base import Prioritization
from regularity_jax.training.features.prioritization.importance import Importance
from regularity_jax.training.features.prioritization.infobatch import InfoBatch
from regularity_jax.training.features.prioritization.noise_aware import NoiseAware
from regularity_jax.training.features.prioritization.rho_loss import RhoLoss
from regularity_jax.training.features.prioritization.selective_backprop import SelectiveBackprop
from regularity_jax.training.features.prioritization.uniform import Uniform

METHODS = {m.name: m for m in (Uniform, SelectiveBackprop, Importance, InfoBatch, NoiseAware,
                                   RhoLoss)}
KINDS = tuple(METHODS)

__all__ = ["METHODS", "KINDS", "Prioritization"]
