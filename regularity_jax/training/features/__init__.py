"""Features: the optional behaviours of a run, each behind `base.Feature`'s few hooks.

  holdout        measures the held-out part of the training split (`holdout.*`)
  aum_threshold  AUM's threshold samples: mislabeled flags (`aum_threshold.*`)
  pruning        static pruning from a previous run's scores (`pruning.*`)
  turnover       turn-over dropout: memorization, influence, generalization error
  weighting      difficulty-based loss weights (`weighting.*`)
  reduction      dynamic reduction to the low-margin examples once separated (`reduction.*`)
  prioritization one method per run, by name (`prioritization`): uniform, selective_backprop,
                 importance, infobatch, noise_aware

`enabled_features(config)` returns the features `config` turns on, in the order the loop calls
their hooks; the prioritization method comes last.
"""

from __future__ import annotations

from regularity_jax.training.features import prioritization
from regularity_jax.training.features.base import Feature
from regularity_jax.training.features.aum_threshold import AumThreshold
from regularity_jax.training.features.holdout import Holdout
from regularity_jax.training.features.pruning import Pruning
from regularity_jax.training.features.reduction import Reduction
from regularity_jax.training.features.turnover import TurnOver
from regularity_jax.training.features.weighting import Weighting

FEATURES = (Holdout, AumThreshold, Pruning, TurnOver, Weighting, Reduction)


def all_classes() -> tuple[type[Feature], ...]:
  """Every feature class, the prioritization methods included."""
  return FEATURES + tuple(prioritization.METHODS.values())


def enabled_features(config) -> list[Feature]:
  """Fresh instances of the features `config` enables (the prioritization method last)."""
  out = [cls(config) for cls in FEATURES if cls.enabled(config)]
  return out + [prioritization.METHODS[config.prioritization](config)]


__all__ = ["FEATURES", "Feature", "all_classes", "enabled_features", "prioritization"]
