"""selective_backprop: Jiang et al. 2019 (arXiv 1910.00762).

Each step forwards a chunk of `candidates` x B examples in eval mode, keeps each with
probability CDF(loss)^beta over the last `sb_history` losses (`selection.online`), and
backpropagates the first B kept (a fixed-shape batch; the rest of the chunk is skipped,
padding is masked). The first epoch uses every example, as the paper does. The scoring
forward costs about a third of a training step per candidate.

State: `online.SBState`, the ring buffer of recent losses (`TrainState.features[name]`).
"""

from __future__ import annotations

import jax.numpy as jnp

from regularity_jax import models
from regularity_jax.metrics.losses import cross_entropy
from regularity_jax.selection import online
from regularity_jax.training import programs
from regularity_jax.training import steps
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.features.prioritization.base import Prioritization
from regularity_jax.training.features.prioritization.base import shuffled_plan
from regularity_jax.training.state import STREAM_STEP


class SelectiveBackprop(Prioritization):
  name = "selective_backprop"
  reads = ("prioritization", "augment", "crop_padding")

  replicas_differ = True

  @classmethod
  def validate(cls, config) -> None:
    options = config.prioritization_options
    if int(options.sb_history) < 1:
      raise ConfigError(f"prioritization_options.sb_history={options.sb_history} must be >= 1: "
                        "the number of recent losses the CDF is taken over (the paper: 1024)")
    if int(options.candidates) < 1:
      raise ConfigError(f"prioritization_options.candidates={options.candidates} must be >= 1")

  def init_state(self, setup):
    return online.sb_init(self.config.prioritization_options.sb_history)

  def plan(self, setup, state, epoch) -> dict:
    width = self.config.batch_size * self.config.prioritization_options.candidates
    return shuffled_plan(setup, state, epoch, width)

  def build(self, setup, core) -> None:
    super().build(setup, core)
    self._first_plan = self._compile(
        setup, lambda s, st, e: shuffled_plan(s, st, e, s.config.batch_size), "uniform")
    config = self.config
    sb_step = make_sb_epoch_step(core.train_step, setup.graphdef, batch_size=config.batch_size,
                                 beta=config.prioritization_options.sb_beta,
                                 augment_images=config.augment, crop_padding=config.crop_padding,
                                 name=self.name)
    self._step = programs.jit("sb_step", setup.replicas.lift(sb_step, shared=("split",)),
                              donate_argnums=(0, 1))

  def epoch_plan(self, setup, state, epoch: int) -> dict:
    if epoch == 0:  # the first epoch presents every example, as in the paper
      return self._first_plan(state, setup.put(jnp.int32(epoch)))
    return super().epoch_plan(setup, state, epoch)

  def step_program(self, core, epoch: int):
    return core.epoch_step if epoch == 0 else self._step


def make_sb_epoch_step(train_step, graphdef, *, batch_size: int, beta: float,
                       augment_images: bool, crop_padding: int = 4,
                       name: str = "selective_backprop"):
  """Selective-Backprop's step: `(state, carry, split, positions, masks, row_weights)` like
  `steps.make_epoch_step`, but each row holds candidates x B candidates, of which at most B
  selected ones are backpropagated. Needs `state.features[name]` (an `online.SBState`)."""

  def select(state, batch, losses):
    mask = batch["mask"]
    history = online.sb_update(state.features[name], losses, mask)  # push first, as the reference
    selected = online.sb_select(state.rng(STREAM_STEP, state.step, 3), history, losses, mask, beta)
    order = jnp.argsort(~selected, stable=True)[:batch_size]
    return state.replace(features={**state.features, name: history}), order, selected[order]

  return make_selection_step(train_step, graphdef, select, augment_images=augment_images,
                             crop_padding=crop_padding)


def make_selection_step(train_step, graphdef, select, *, augment_images: bool,
                        crop_padding: int = 4):
  """A step that forwards a row of W candidates in eval mode, lets `select(state, batch,
  losses f32[W]) -> (state, order i32[B], mask bool[B])` pick the B rows to backpropagate
  (and update its own state), and trains on them. The signature is `steps.make_epoch_step`'s;
  `carry["forwarded"]` counts the W candidates, `carry["sums"]` the backpropagated rows."""

  def selection_step(state, carry, split, positions, masks, row_weights, rows=None):
    del row_weights
    row = carry["row"]
    batch = steps.row_batch(state, split, positions, masks, row, augment_images=augment_images,
                            crop_padding=crop_padding, rows=rows)
    logits, _ = models.apply(graphdef, state.params, state.model_state, batch["image"], train=False)
    state, order, train_mask = select(state, batch, cross_entropy(logits, batch["label"]))
    train_batch = {k: v[order] for k, v in batch.items()}
    train_batch["mask"] = train_mask
    state, per_example = train_step(state, train_batch)
    return state, {"row": row + 1,
                   "sums": carry["sums"] + steps.batch_sums(per_example, train_batch["mask"]),
                   "forwarded": carry["forwarded"] + jnp.sum(batch["mask"])}

  return selection_step
