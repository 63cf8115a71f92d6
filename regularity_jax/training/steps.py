"""Pure train and eval steps that return per-example outputs.

A batch is a dict of device arrays with a leading batch axis B:

  image   f32[B, *example_shape]
  label   i32[B]
  id      i32[B]   stable example ids (metric kernels index their state with these)
  mask    bool[B]  False on padding rows: they contribute nothing to loss, gradient or stats
  weight  f32[B]   per-example loss weight (ones by default)

`train_step(state, batch) -> (state, per_example)` takes one SGD step on the mean weighted
loss over real rows and updates the presentation-stream tracker with the train-mode logits of
that same forward pass (before the update), as Toneva et al. define a presentation.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from regularity_jax import metrics
from regularity_jax.metrics.losses import cross_entropy
from regularity_jax import models
from regularity_jax.data import augment
from regularity_jax.estimators import turnover as turnover_estimator
from regularity_jax.training import optimizers
from regularity_jax.training.state import STREAM_STEP
from regularity_jax.training.state import STREAM_TURNOVER
from regularity_jax.training.state import TrainState

PerExample = dict[str, jnp.ndarray]


def per_example_outputs(logits: jnp.ndarray, labels: jnp.ndarray, loss: jnp.ndarray) -> PerExample:
  """The per-example record every step returns: loss, correct, margin and the logits."""
  logits = logits.astype(jnp.float32)
  return {"loss": loss, "correct": jnp.argmax(logits, -1) == labels,
          "margin": metrics.logit_margin(logits, labels), "logits": logits}


class _AsXlaLikes:
  """No layout constraint (the default of `make_train_step`'s `constrain`)."""

  def __call__(self, tree):
    return tree

  def rows(self, tree):
    return tree


_AS_XLA_LIKES = _AsXlaLikes()


def make_train_step(graphdef, tx: optax.GradientTransformation, tracker: metrics.Tracker,
                    schedule: optax.Schedule, *, turnover: bool = False,
                    constrain: Callable | None = None, gradient_groups: int = 0,
                    fixed_order_sum: Callable | None = None
                    ) -> Callable[[TrainState, dict], tuple[TrainState, PerExample]]:
  """Returns the pure `train_step(state, batch) -> (state, per_example)` (not jitted).

  `tx` is the unit-rate optimizer of `optimizers.make_optimizer`; its update is scaled by
  `schedule(state.clock.position)`, and the clock advances (`optimizers.Clock`). With
  `turnover`, every example trains only its own turn-over sub-network m_id. `constrain`: the
  layout of the tracker state and of the values updating it (`sharding.IdSharded`; None: as
  XLA likes). `gradient_groups` G > 0 (`gradient_reduction=fixed_order`, with
  `fixed_order_sum`, `sharding.fixed_order_sum`): the batch is cut into G groups of B/G rows,
  one per device, each group's gradient is taken apart and the G gradients are summed in
  group order on every device, so the sum has the same bits whatever the processes and
  network (models without batch norm, no turn-over).
  """
  constrain = constrain or _AS_XLA_LIKES
  if gradient_groups and turnover:
    raise ValueError("gradient_groups and turnover do not combine")

  def train_step(state: TrainState, batch: dict) -> tuple[TrainState, PerExample]:
    mask = batch["mask"]
    weights = batch["weight"] * mask
    dropout_key = state.rng(STREAM_STEP, state.step, 1)
    context = (models.TurnOver(state.rng(STREAM_TURNOVER), batch["id"], "own")
               if turnover else None)

    count = jnp.maximum(jnp.sum(mask), 1)

    def loss_fn(params, image, label, weight):
      """The batch's (or a group's) share of the mean weighted loss, and its outputs."""
      logits, new_model_state = models.apply(graphdef, params, state.model_state, image,
                                             train=True, key=dropout_key, turnover=context)
      losses = cross_entropy(logits, label)
      return jnp.sum(losses * weight) / count, (logits, losses, new_model_state)

    grad_fn = jax.grad(loss_fn, has_aux=True)
    if gradient_groups:
      grads, (logits, losses, new_model_state) = _grouped_gradients(
          grad_fn, state.params, batch["image"], batch["label"], weights, gradient_groups,
          fixed_order_sum)
    else:
      grads, (logits, losses, new_model_state) = grad_fn(state.params, batch["image"],
                                                         batch["label"], weights)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    updates = optimizers.scale_updates(updates, schedule(state.clock.position))
    new_state = state.replace(
        step=state.step + 1,
        params=optax.apply_updates(state.params, updates),
        model_state=new_model_state,
        opt_state=opt_state,
        clock=state.clock.advance(jnp.sum(mask)),
        # Rows drawn twice (sampling with replacement) are one presentation for the kernels.
        train_stats=constrain(tracker.update(state.train_stats, *constrain.rows((
            batch["id"], logits, batch["label"],
            mask & metrics.indexing.first_occurrence(batch["id"], mask))))),
    )
    return new_state, per_example_outputs(logits, batch["label"], losses)

  return train_step


def _grouped_gradients(grad_fn: Callable, params, images, labels, weights, groups: int,
                       fixed_order_sum: Callable):
  """`grad_fn(params, image, label, weight)` of each of `groups` equal groups of the batch,
  summed by `fixed_order_sum` ([G, ...] -> [...]): (grads, (logits [B, C], losses [B],
  model_state))."""
  grads, (logits, losses, model_state) = jax.vmap(grad_fn, in_axes=(None, 0, 0, 0))(
      params, *(x.reshape((groups, -1) + x.shape[1:]) for x in (images, labels, weights)))
  model_state = jax.tree.map(lambda x: x[0], model_state)  # empty: batch norm is refused
  return fixed_order_sum(grads), (logits.reshape((-1,) + logits.shape[2:]),
                                  losses.reshape(-1), model_state)


def make_eval_step(graphdef, tracker: metrics.Tracker, constrain: Callable | None = None):
  """Returns `eval_step(params, model_state, stats, batch) -> (stats, per_example)` (eval mode;
  `constrain` as in `make_train_step`)."""
  constrain = constrain or _AS_XLA_LIKES

  def eval_step(params, model_state, stats, batch):
    logits, _ = models.apply(graphdef, params, model_state, batch["image"], train=False)
    stats = constrain(tracker.update(stats, *constrain.rows(
        (batch["id"], logits, batch["label"], batch["mask"]))))
    return stats, per_example_outputs(logits, batch["label"], cross_entropy(logits, batch["label"]))

  return eval_step


def gather_batch(split: dict, positions: jnp.ndarray, mask: jnp.ndarray,
                 rows: dict | None = None) -> dict:
  """Builds a batch from an on-device split dict {image, label, id, weight} at row `positions`.

  `rows`: columns of this very batch already gathered (on the host, `training.inputs`'s stream
  mode: e.g. {image f32[B, ...], label i32[B], id i32[B]}); they take the place of the split's.
  """
  batch = {k: v[positions] for k, v in split.items()}
  batch.update(rows or {})
  batch["mask"] = mask
  return batch


def batch_sums(per_example: PerExample, mask: jnp.ndarray) -> jnp.ndarray:
  """f32[3]: (loss sum, correct count, example count) over the rows with mask True."""
  m = mask.astype(jnp.float32)
  return jnp.stack([jnp.sum(per_example["loss"] * m),
                    jnp.sum(per_example["correct"].astype(jnp.float32) * m), jnp.sum(m)])


def init_epoch_carry() -> dict:
  """The per-epoch carry of `epoch_step`: row counter, (loss, correct, count) sums over the
  backpropagated rows, and the number of examples forwarded."""
  return {"row": jnp.zeros((), jnp.int32), "sums": jnp.zeros(3, jnp.float32),
          "forwarded": jnp.zeros((), jnp.int32)}


def row_batch(state: TrainState, split: dict, positions, masks, row, *, augment_images: bool,
              crop_padding: int = 4, flip: bool = True, rows: dict | None = None) -> dict:
  """Row `row` of an epoch's i32[S, W] positions / bool[S, W] masks as a batch, gathered from
  the on-device split (and `rows`, the streamed columns of that row: `gather_batch`) and (for
  images) augmented with the key of `state.step`."""
  mask = jax.lax.dynamic_index_in_dim(masks, row, keepdims=False)
  batch = gather_batch(split, jax.lax.dynamic_index_in_dim(positions, row, keepdims=False), mask,
                       rows)
  if augment_images:
    batch["image"] = augment.crop_and_flip(state.rng(STREAM_STEP, state.step, 2), batch["image"],
                                           batch["id"], padding=crop_padding, flip=flip)
  return batch


def make_epoch_step(train_step, *, augment_images: bool, crop_padding: int = 4, flip: bool = True):
  """Fuses gather + on-device augmentation + `train_step` + running sums into one function.

  `epoch_step(state, carry, split, positions, masks, row_weights, rows=None) -> (state, carry)`
  trains on row `carry["row"]` of the epoch's i32[S, B] positions / bool[S, B] masks (from
  `batching.epoch_batches`), with the loss weights of the split times f32[S, B] row_weights
  (importance-sampling corrections; ones otherwise), and advances the row. The whole matrices
  stay on the device and the row is picked there, so the host loop passes no per-step data,
  except in stream mode (`training.inputs`): `rows`, the columns of that row streamed from the
  host (e.g. {image f32[B, ...], label, id}), which the split then lacks.
  """

  def epoch_step(state: TrainState, carry: dict, split: dict, positions, masks, row_weights,
                 rows=None):
    row = carry["row"]
    batch = row_batch(state, split, positions, masks, row, augment_images=augment_images,
                      crop_padding=crop_padding, flip=flip, rows=rows)
    mask = batch["mask"]
    batch["weight"] = batch["weight"] * jax.lax.dynamic_index_in_dim(row_weights, row,
                                                                     keepdims=False)
    state, per_example = train_step(state, batch)
    return state, {"row": row + 1, "sums": carry["sums"] + batch_sums(per_example, mask),
                   "forwarded": carry["forwarded"] + jnp.sum(mask)}

  return epoch_step


def make_scanned_epoch(epoch_step):
  """`scanned(state, carry, split, positions, masks, row_weights, num_steps) -> (state, carry)`:
  the first `num_steps` rows of an epoch as ONE device program (`lax.fori_loop` with a traced
  trip count, so a changing number of steps does not recompile). Faster for small models,
  where per-step dispatch dominates; the cost is no per-step progress on the host."""

  def scanned(state, carry, split, positions, masks, row_weights, num_steps):
    return jax.lax.fori_loop(
        0, num_steps,
        lambda _, sc: epoch_step(sc[0], sc[1], split, positions, masks, row_weights),
        (state, carry))

  return scanned


def make_turnover_evaluate(graphdef):
  """`evaluate(params, model_state, turnover_key, stats, split, positions, mask, rows=None)
  -> stats`: own and flipped sub-network passes over a split, feeding `estimators.turnover`
  state (`rows`: streamed columns [S, B, ...], as in `make_evaluate`)."""

  def evaluate(params, model_state, turnover_key, stats, split, positions, mask, rows=None):
    def body(stats, row):
      batch = gather_batch(split, *row)
      own, flipped = turnover_estimator.own_and_flipped_logits(
          graphdef, params, model_state, turnover_key, batch["image"], batch["id"])
      return turnover_estimator.update(stats, batch["id"], own, flipped, batch["label"],
                                       batch["mask"]), None

    stats, _ = jax.lax.scan(body, stats, (positions, mask, rows))
    return stats

  return evaluate


def make_evaluate(eval_step):
  """`evaluate(params, model_state, stats, split, positions[S, B], mask[S, B], rows=None)
  -> (stats, sums)`.

  One `lax.scan` over the evaluation batches of a whole split: a single dispatch per split.
  `rows`: columns of those batches streamed from the host ({image f32[S, B, ...], label,
  id}; `training.inputs`), scanned along with the positions.
  """

  def evaluate(params, model_state, stats, split, positions, mask, rows=None):
    def body(carry, row):
      stats, sums = carry
      batch = gather_batch(split, *row)
      stats, per_example = eval_step(params, model_state, stats, batch)
      return (stats, sums + batch_sums(per_example, row[1])), None

    (stats, sums), _ = jax.lax.scan(body, (stats, jnp.zeros(3, jnp.float32)),
                                    (positions, mask, rows))
    return stats, sums

  return evaluate
