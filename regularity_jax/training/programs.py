"""The jitted programs of a run, built in one place.

`jit(name, fn, **kwargs)` is the one door to `jax.jit` for the engine and its features: it
applies `WRAP(name, fn)` first, identity by default, so that a test can wrap every program,
e.g. `monkeypatch.setattr(programs, "WRAP", lambda name, fn: chex.assert_max_traces(fn, n=1))`
to prove that no program recompiles when the training subset or the plan changes.

`Programs.build(setup)` makes the core programs (the per-step epoch program, the scanned
epoch, the evaluation pass); the features build their own in their `build` hook.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax

from regularity_jax.training import sharding
from regularity_jax.training import steps

WRAP: Callable[[str, Callable], Callable] = lambda name, fn: fn


def jit(name: str, fn: Callable, **kwargs) -> Callable:
  """`jax.jit(WRAP(name, fn), **kwargs)`."""
  return jax.jit(WRAP(name, fn), **kwargs)


@dataclasses.dataclass
class Programs:
  """The core jitted programs.

  Attributes:
    train_step: the pure (unjitted) `train_step(state, batch)` the epoch programs fuse.
    epoch_step: `(state, carry, split, positions, masks, row_weights) -> (state, carry)`, one
      step on row `carry["row"]` of the epoch plan (state and carry donated).
    scanned_epoch: the first `num_steps` rows of an epoch as one program.
    evaluate: `(params, model_state, stats, split, positions, mask, rows=None) -> (stats,
      sums)`, an eval-mode pass over a split (stats donated); traced once per split shape
      (`rows`: the streamed columns of stream mode, `training.inputs`).
  """
  train_step: Callable
  epoch_step: Callable
  scanned_epoch: Callable
  evaluate: Callable

  @classmethod
  def build(cls, setup, *, turnover: bool = False) -> "Programs":
    config, lift = setup.config, setup.replicas.lift
    fixed = config.gradient_reduction == "fixed_order"
    train_step = steps.make_train_step(
        setup.graphdef, setup.tx, setup.tracker, setup.schedule, turnover=turnover,
        constrain=setup.constrain_statistics,
        gradient_groups=setup.mesh.devices.size if fixed else 0,
        fixed_order_sum=sharding.fixed_order_sum(setup.mesh) if fixed else None)
    fused = steps.make_epoch_step(train_step, augment_images=config.augment,
                                  crop_padding=config.crop_padding)
    evaluate = steps.make_evaluate(steps.make_eval_step(setup.graphdef, setup.tracker,
                                                        setup.constrain_statistics))
    return cls(
        train_step=train_step,
        epoch_step=jit("epoch_step", lift(fused, shared=("split",)), donate_argnums=(0, 1)),
        scanned_epoch=jit("scanned_epoch",
                          lift(steps.make_scanned_epoch(fused), shared=("split", "num_steps")),
                          donate_argnums=(0, 1)),
        evaluate=jit("evaluate", lift(evaluate, shared=("split", "positions", "mask", "rows")),
                     donate_argnums=(2,)))

