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

from regularity_jax import registry
from regularity_jax.training.features.prioritization.base import Prioritization
from regularity_jax.training.features.prioritization.importance import Importance
from regularity_jax.training.features.prioritization.infobatch import InfoBatch
from regularity_jax.training.features.prioritization.noise_aware import NoiseAware
from regularity_jax.training.features.prioritization.rho_loss import RhoLoss
from regularity_jax.training.features.prioritization.selective_backprop import SelectiveBackprop
from regularity_jax.training.features.prioritization.uniform import Uniform

BUILTINS = (Uniform, SelectiveBackprop, Importance, InfoBatch, NoiseAware, RhoLoss)


def _check_class(obj, spec):
  if not (isinstance(obj, type) and issubclass(obj, Prioritization)):
    raise registry.PartError(f"prioritization method {spec!r} must be a subclass of "
                             "regularity_jax.training.features.prioritization.Prioritization "
                             "(docs/parts.md)")
  return obj


# Built-ins by name; user methods by import path ('package.module:Class', docs/parts.md).
METHODS = registry.Registry("prioritization method", "--config.prioritization",
                            {m.name: m for m in BUILTINS}, check=_check_class)
KINDS = tuple(METHODS)

__all__ = ["METHODS", "KINDS", "Prioritization"]
