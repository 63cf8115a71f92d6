"""Features: the optional behaviours of a run, each a part behind `base.Feature`'s few hooks.

  holdout        measures the held-out part of the training split (`holdout.*`)
  aum_threshold  AUM's threshold samples: mislabeled flags (`aum_threshold.*`)
  pruning        static pruning from a previous run's scores (`pruning.*`)
  turnover       turn-over dropout: memorization, influence, generalization error
  weighting      difficulty-based loss weights (`weighting.*`)
  reduction      dynamic reduction to the low-margin examples once separated (`reduction.*`)
  prioritization one method per run, by name or import path (`prioritization`): uniform,
                 selective_backprop, importance, infobatch, noise_aware, rho_loss

`FEATURES` is the registry of the built-in features; `features` (a tuple of import paths,
'package.module:Class' / 'path/to/file.py:Class') adds user features. `enabled_features(config)`
returns the enabled ones, each built from its own view of the config (`Feature.view`), in the
order of their declared phases (`registry.FEATURE_PHASES`); the prioritization method has the
last phase, and `method_of` finds it by that phase.
"""

from __future__ import annotations

from regularity_jax import registry
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.features import prioritization
from regularity_jax.training.features.base import Feature
from regularity_jax.training.features.aum_threshold import AumThreshold
from regularity_jax.training.features.holdout import Holdout
from regularity_jax.training.features.pruning import Pruning
from regularity_jax.training.features.reduction import Reduction
from regularity_jax.training.features.turnover import TurnOver
from regularity_jax.training.features.weighting import Weighting

BUILTINS = (Holdout, AumThreshold, Pruning, TurnOver, Weighting, Reduction)


def _check_class(obj, spec):
  if not (isinstance(obj, type) and issubclass(obj, Feature)):
    raise registry.PartError(f"feature {spec!r} must be a subclass of "
                             "regularity_jax.training.features.Feature (docs/parts.md)")
  if obj.phase not in registry.FEATURE_PHASES:
    raise registry.PartError(f"feature {spec!r} declares phase {obj.phase!r}; declare one of "
                             f"{registry.FEATURE_PHASES} (docs/parts.md)")
  return obj


FEATURES = registry.Registry("feature", "--config.features entry",
                             {f.name: f for f in BUILTINS}, check=_check_class)
_ORDER = tuple(f.name for f in BUILTINS) + tuple(prioritization.METHODS.builtins)


def all_classes(config=None, base_dir=None) -> tuple[type[Feature], ...]:
  """Every feature class (the built-ins, the user ones `config` names), the prioritization
  methods included."""
  user = tuple(FEATURES.get(s, base_dir) for s in (config.get("features", ()) if config else ()))
  method = () if config is None else (prioritization.METHODS.get(config.prioritization,
                                                                 base_dir),)
  return tuple(dict.fromkeys(BUILTINS + user + tuple(prioritization.METHODS.values()) + method))


def enabled_classes(config, base_dir=None) -> list[type[Feature]]:
  """The classes of the features `config` enables, the prioritization method included."""
  user = [FEATURES.get(s, base_dir) for s in config.get("features", ())]
  out = [cls for cls in (*BUILTINS, *user) if cls.enabled(cls.view(config))]
  return out + [prioritization.METHODS.get(config.prioritization, base_dir)]


def validate(config, base_dir=None) -> None:
  """Each part checks its own view of the config (enabled or not), one line each."""
  try:
    method = prioritization.METHODS.get(config.prioritization, base_dir)
  except registry.PartError as e:
    raise ConfigError(str(e).replace("set --config.prioritization entry",
                                     "set --config.prioritization")) from None
  user = [FEATURES.get(s, base_dir) for s in config.get("features", ())]
  for cls in (*BUILTINS, *user, method):
    cls.validate(cls.view(config))
  kernels = tuple(config.tracking.kernels)
  for cls in enabled_classes(config, base_dir):  # what each needs of the other parts
    for kind, name, message in cls.needs(cls.view(config)):
      if kind == "statistic" and name not in kernels:
        raise ConfigError(message)
      if kind == "feature":
        other = FEATURES.get(name, base_dir)
        if not other.enabled(other.view(config)):
          raise ConfigError(message)


def enabled_features(config, base_dir=None) -> list[Feature]:
  """Fresh instances of the features `config` enables, each built from its view, in phase
  order (the prioritization method last)."""
  parts = [cls.from_config(config) for cls in enabled_classes(config, base_dir)]
  return registry.phase_order(parts, registry.FEATURE_PHASES, _ORDER)


def data_features(config, base_dir=None) -> list[Feature]:
  """The enabled features of phase "data" (those that change the dataset), in order."""
  user = [FEATURES.get(s, base_dir) for s in config.get("features", ())]
  parts = [cls.from_config(config) for cls in (*BUILTINS, *user)
           if cls.phase == "data" and cls.enabled(cls.view(config))]
  return registry.phase_order(parts, registry.FEATURE_PHASES, _ORDER)


def method_of(features) -> prioritization.Prioritization:
  """The prioritization method among `features` (the one part of phase 'prioritization')."""
  methods = [f for f in features if f.phase == "prioritization"]
  if len(methods) != 1:
    raise ValueError(f"a run has exactly one prioritization method, got {len(methods)}")
  return methods[0]


__all__ = ["FEATURES", "Feature", "all_classes", "data_features", "enabled_features",
           "enabled_classes",
           "method_of", "prioritization", "validate"]
