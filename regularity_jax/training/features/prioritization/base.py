"""What every prioritization method shares: the epoch plan's inputs, shape and programs.

A method decides, once per epoch and on the device, which training rows the epoch's steps
take: `plan(setup, state, epoch)` returns

  positions    i32[S, W] rows of the training split per step (W = B, or candidates x B)
  masks        bool[S, W] real rows (False: padding)
  row_weights  f32[S, W] loss-weight corrections per row (importance sampling; ones otherwise)
  example_weights  f32[N] loss weights per example this epoch (InfoBatch; ones otherwise)
  num_active   i32[] examples to present; the loop runs num_steps(num_active, W) steps

with fixed shapes, so a changing subset never recompiles. Exactly one method is on
(`--config.prioritization`); `uniform` is the default.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from regularity_jax.data import batching
from regularity_jax.training import programs
from regularity_jax.training import sharding
from regularity_jax.training.features.base import Feature
from regularity_jax.training.state import STREAM_DATA_ORDER


class Prioritization(Feature):
  """A prioritization method; subclasses implement `plan`. Its block: `prioritization_options`
  (and `prioritization`, the method's name)."""
  phase = "prioritization"
  block = "prioritization_options"
  reads: tuple[str, ...] = ("prioritization",)
  # Whether the epoch's per-example loss weights multiply the split's (InfoBatch).
  uses_example_weights = False
  # Whether replicas would take different steps or weights (then num_seeds > 1 is refused).
  replicas_differ = False

  @classmethod
  def replica_clash(cls, config) -> str | None:
    return f"prioritization={config.prioritization}" if cls.replicas_differ else None

  @classmethod
  def enabled(cls, config) -> bool:
    return config.prioritization == cls.name

  def plan(self, setup, state, epoch) -> dict:
    raise NotImplementedError

  def build(self, setup, core) -> None:
    self._plan = self._compile(setup, self.plan, self.name)

  def epoch_plan(self, setup, state, epoch: int) -> dict:
    """The device plan of `epoch` (see the module docstring)."""
    return self._plan(state, setup.put(jnp.int32(epoch)))

  def step_program(self, core, epoch: int):
    """The program that runs one row of the plan: the core epoch step (`programs.Programs`)."""
    del epoch
    return core.epoch_step

  @staticmethod
  def _compile(setup, plan_fn, name: str):
    rows = setup.rows if not setup.replicas.on else sharding.batch_sharded(setup.mesh, axis=2)
    shardings = {"positions": rows, "masks": rows, "row_weights": rows,
                 "example_weights": setup.replicated, "num_active": setup.replicated}

    def epoch_plan(state, epoch):
      return plan_fn(setup, state, epoch)

    return programs.jit(f"epoch_plan_{name}", setup.replicas.lift(epoch_plan, shared=("epoch",)),
                        out_shardings=shardings)


def epoch_key(state, epoch) -> jax.Array:
  """The PRNG key of an epoch's plan."""
  return jax.random.fold_in(state.rng(STREAM_DATA_ORDER), epoch)


def last_losses(setup, state) -> tuple[jnp.ndarray, jnp.ndarray]:
  """f32[n_train] last presentation loss of each training row (NaN if unseen), and bool[n]
  rows whose loss is known (the 'losses' kernel; all unseen without it)."""
  table = setup.tracker.summarize(state.train_stats)
  last = table["last_loss"] if "last_loss" in table else jnp.full((setup.id_space,), jnp.nan)
  last = last[setup.train_ids]
  return last, jnp.isfinite(last)


def shuffled_plan(setup, state, epoch, width: int) -> dict:
  """Every active row once, shuffled, in rows of `width` (uniform, Selective-Backprop and
  RHO-LOSS), by the run's `epoch_plan`: "permutation" (`batching.epoch_batches`, active rows
  first) or "bijection" (`batching.bijection_batches`, computed column by column; inactive rows
  stay in place masked out, so every row of the plan runs)."""
  if setup.config.get("epoch_plan", "permutation") == "bijection":
    positions, masks = batching.bijection_batches(epoch_key(state, epoch), setup.n_train, width,
                                                  state.active)
    num_active = jnp.int32(setup.n_train)
  else:
    positions, masks = batching.epoch_batches(epoch_key(state, epoch), setup.n_train, width,
                                              state.active)
    num_active = jnp.sum(state.active)
  return {"positions": positions, "masks": masks, "row_weights": jnp.ones(masks.shape),
          "example_weights": jnp.ones((setup.n_train,), jnp.float32),
          "num_active": num_active}
