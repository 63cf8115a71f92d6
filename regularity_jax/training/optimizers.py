"""optax optimizers and learning-rate schedules built from config fields.

Fields (defaults and documentation in `regularity_jax.training.config`, the one place that
sets them): `optimizer` in {sgd, adam, adamw},
`learning_rate`, `momentum`, `nesterov`, `weight_decay`, `schedule` in {constant, multistep,
cosine}, `lr_milestones` (epochs), `lr_gamma`, `warmup_epochs`, `schedule_clock` in {epoch,
examples}.

For sgd and adam, weight decay is the coupled L2 penalty of PyTorch's `weight_decay` (added to
the gradient before momentum), as in the papers' PyTorch code; adamw decouples it.

Schedules follow the epoch, not the optimizer step. A schedule is written in the steps of the
FULL run (`steps_per_epoch` of the whole training split), and the train step evaluates it at a
`Clock` position instead of optax's step count:

  schedule_clock="epoch"     at step j of epoch e, with S_e steps in that epoch, the position
                             is e * steps_per_epoch + j * steps_per_epoch / S_e. In the full run
                             that is the step count itself; a run that prunes, reduces or
                             prioritizes (fewer steps per epoch) has the same learning rate at
                             the same epoch.
  schedule_clock="examples"  the number of examples backpropagated so far, in units of the
                             full split: examples * steps_per_epoch / N.

Every optimizer here ends with optax's `scale_by_learning_rate`, so it is built with learning
rate 1 and the step multiplies its update by the scheduled rate: the same arithmetic as optax's
own schedule, at another position.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import optax

from regularity_jax.training.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "multistep", "cosine")
CLOCKS = ("epoch", "examples")


@flax.struct.dataclass
class Clock:
  """Where the learning-rate schedule stands, in optimizer steps of the full run.

  Each train step reads the rate at `position`, then advances it by
  `per_step + per_example * (examples backpropagated in the step)`.
  """
  position: jnp.ndarray     # f32[]
  per_step: jnp.ndarray     # f32[]
  per_example: jnp.ndarray  # f32[]

  def advance(self, examples: jnp.ndarray) -> "Clock":
    return self.replace(position=self.position + self.per_step
                        + self.per_example * examples.astype(jnp.float32))


def init_clock(config, steps_per_epoch: int, num_train: int) -> Clock:
  """The clock at the start of training."""
  if config.schedule_clock == "examples":
    return Clock(position=jnp.zeros((), jnp.float32), per_step=jnp.zeros((), jnp.float32),
                 per_example=jnp.asarray(steps_per_epoch / max(num_train, 1), jnp.float32))
  return epoch_clock(0, steps_per_epoch, steps_per_epoch)


def epoch_clock(epoch: int, steps_this_epoch: int, steps_per_epoch: int) -> Clock:
  """The epoch clock at the start of `epoch`, which has `steps_this_epoch` steps."""
  return Clock(position=jnp.asarray(float(epoch * steps_per_epoch), jnp.float32),
               per_step=jnp.asarray(steps_per_epoch / max(steps_this_epoch, 1), jnp.float32),
               per_example=jnp.zeros((), jnp.float32))


def make_schedule(config, steps_per_epoch: int) -> optax.Schedule:
  """The schedule over positions in full-run steps (`steps_per_epoch` of the whole split)."""
  lr = float(config.learning_rate)
  total = max(1, int(config.num_epochs) * steps_per_epoch)
  warmup = int(round(float(config.warmup_epochs) * steps_per_epoch))
  kind = config.schedule
  if kind == "constant":
    main = optax.constant_schedule(lr)
  elif kind == "multistep":
    gamma = float(config.lr_gamma)
    boundaries = {int(m) * steps_per_epoch: gamma for m in config.lr_milestones}
    main = optax.piecewise_constant_schedule(lr, boundaries)
  elif kind == "cosine":
    main = optax.cosine_decay_schedule(lr, max(1, total - warmup))
  else:
    raise ConfigError(f"unknown schedule {kind!r}; set --config.schedule to one of {SCHEDULES}")
  if warmup <= 0:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def make_optimizer(config) -> optax.GradientTransformation:
  """The optax transformation of `config` at learning rate 1 (the step applies the schedule)."""
  wd = float(config.weight_decay)
  name = config.optimizer
  if name == "sgd":
    tx = optax.sgd(1.0, momentum=float(config.momentum) or None, nesterov=bool(config.nesterov))
  elif name == "adam":
    tx = optax.adam(1.0)
  elif name == "adamw":
    return optax.adamw(1.0, weight_decay=wd)
  else:
    raise ConfigError(f"unknown optimizer {name!r}; set --config.optimizer to one of {OPTIMIZERS}")
  if wd:
    tx = optax.chain(optax.add_decayed_weights(wd), tx)
  return tx


def scale_updates(updates, learning_rate: jnp.ndarray):
  """The unit-rate optimizer's updates times the scheduled rate (f32[])."""
  return jax.tree.map(lambda u: (u * learning_rate).astype(u.dtype), updates)
