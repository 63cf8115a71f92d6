"""optax optimizers and learning-rate schedules built from config fields.

Fields (see `regularity_jax.training.config`): `optimizer` in {sgd, adam, adamw},
`learning_rate`, `momentum`, `nesterov`, `weight_decay`, `schedule` in {constant, multistep,
cosine}, `lr_milestones` (epochs), `lr_gamma`, `warmup_epochs`.

For sgd and adam, weight decay is the coupled L2 penalty of PyTorch's `weight_decay` (added to
the gradient before momentum), as in the papers' PyTorch code; adamw decouples it.
"""

from __future__ import annotations

import optax

from regularity_jax.training.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "multistep", "cosine")


def make_schedule(config, steps_per_epoch: int) -> optax.Schedule:
  lr = float(config.learning_rate)
  total = max(1, int(config.num_epochs) * steps_per_epoch)
  warmup = int(round(float(config.get("warmup_epochs", 0)) * steps_per_epoch))
  kind = config.get("schedule", "constant")
  if kind == "constant":
    main = optax.constant_schedule(lr)
  elif kind == "multistep":
    gamma = float(config.get("lr_gamma", 0.1))
    boundaries = {int(m) * steps_per_epoch: gamma for m in config.get("lr_milestones", ())}
    main = optax.piecewise_constant_schedule(lr, boundaries)
  elif kind == "cosine":
    main = optax.cosine_decay_schedule(lr, max(1, total - warmup))
  else:
    raise ConfigError(f"unknown schedule {kind!r}; set --config.schedule to one of {SCHEDULES}")
  if warmup <= 0:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def make_optimizer(config, steps_per_epoch: int) -> optax.GradientTransformation:
  """Returns the optax transformation described by `config`."""
  schedule = make_schedule(config, steps_per_epoch)
  wd = float(config.get("weight_decay", 0.0))
  name = config.get("optimizer", "sgd")
  if name == "sgd":
    tx = optax.sgd(schedule, momentum=float(config.get("momentum", 0.0)) or None,
                   nesterov=bool(config.get("nesterov", False)))
  elif name == "adam":
    tx = optax.adam(schedule)
  elif name == "adamw":
    return optax.adamw(schedule, weight_decay=wd)
  else:
    raise ConfigError(f"unknown optimizer {name!r}; set --config.optimizer to one of {OPTIMIZERS}")
  if wd:
    tx = optax.chain(optax.add_decayed_weights(wd), tx)
  return tx
