"""Memorization, influence and generalization error from one run with turn-over dropout.

Example i trains only its own sub-network m_i (`models.TurnOver(mode="own")`), so the flipped
sub-network 1 - m_i never saw it (Kobayashi et al. 2020, arXiv 2012.04207; Liu, Lin, Jaggi
2021, arXiv 2112.08798). With L(z; m) the loss of target z under sub-network m:

  influence of i on z        L(z; 1 - m_i) - L(z; m_i)   (> 0: training on i lowered z's loss)
  memorization, loss form    L(i; 1 - m_i) - L(i; m_i)   (self-influence, z = i)
  memorization, 0/1 form     correct(i; m_i) - correct(i; 1 - m_i)   (Feldman-Zhang's estimator)
  generalization error       L(i; 1 - m_i): the loss on i of a model that did not train on it,
                             the "difficulty" of idea D (Zhou et al. 2023, arXiv 2301.04850)

Everything runs in eval mode (batch norm running statistics), batched over examples.

Per-example state (`init / update / summarize`, like the metric kernels) keeps the values of
the latest evaluation and their means over all evaluations so far:

  memorization              f32  0/1 form at the latest evaluation (values -1, 0, 1)
  memorization_loss         f32  loss form at the latest evaluation
  generalization_error      f32  flipped-network loss at the latest evaluation
  memorization_mean, memorization_loss_mean, generalization_error_mean
                            f32  the same averaged over evaluations (smoother; the trajectory)
  turnover_observations     i32  evaluations so far
  flipped_prob              f32[N, C] softmax of the flipped network at the latest evaluation
                            (the input of the bias/variance split over runs)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from regularity_jax import models
from regularity_jax.metrics import indexing
from regularity_jax.metrics.losses import cross_entropy

SUMMARY_KEYS = ("memorization", "memorization_loss", "generalization_error", "memorization_mean",
                "memorization_loss_mean", "generalization_error_mean", "turnover_observations")


class TurnOverState(NamedTuple):
  """Per-example state; fields [num_examples] except flipped_prob [num_examples, C]."""
  memorization: jnp.ndarray
  memorization_loss: jnp.ndarray
  generalization_error: jnp.ndarray
  sums: jnp.ndarray          # f32[N, 3] running sums of the three above
  observations: jnp.ndarray  # i32[N]
  flipped_prob: jnp.ndarray  # f32[N, C]


def init(num_examples: int, num_classes: int) -> TurnOverState:
  nan = lambda: jnp.full((num_examples,), jnp.nan, jnp.float32)  # pylint: disable=unnecessary-lambda-assignment
  return TurnOverState(memorization=nan(), memorization_loss=nan(), generalization_error=nan(),
                       sums=jnp.zeros((num_examples, 3), jnp.float32),
                       observations=jnp.zeros((num_examples,), jnp.int32),
                       flipped_prob=jnp.full((num_examples, num_classes), jnp.nan, jnp.float32))


def per_example(own_logits: jnp.ndarray, flipped_logits: jnp.ndarray,
                labels: jnp.ndarray) -> dict[str, jnp.ndarray]:
  """own/flipped logits f32[B, C] of each example's own and flipped sub-network -> f32[B] each."""
  own_loss, flipped_loss = cross_entropy(own_logits, labels), cross_entropy(flipped_logits, labels)
  own_ok = (jnp.argmax(own_logits, -1) == labels).astype(jnp.float32)
  flipped_ok = (jnp.argmax(flipped_logits, -1) == labels).astype(jnp.float32)
  return {"memorization": own_ok - flipped_ok, "memorization_loss": flipped_loss - own_loss,
          "generalization_error": flipped_loss}


def update(state: TurnOverState, ids: jnp.ndarray, own_logits: jnp.ndarray,
           flipped_logits: jnp.ndarray, labels: jnp.ndarray,
           mask: jnp.ndarray | None = None) -> TurnOverState:
  """Adds one evaluation of each unmasked example (ids i32[B], logits f32[B, C], labels i32[B])."""
  n = state.observations.shape[0]
  mask = indexing.resolve_mask(ids, mask)
  sid = indexing.safe_ids(ids, mask, n)
  values = per_example(own_logits, flipped_logits, labels)
  stacked = jnp.stack([values[k] for k in SUMMARY_KEYS[:3]], axis=-1)
  probs = jax.nn.softmax(flipped_logits.astype(jnp.float32), axis=-1)
  return TurnOverState(
      memorization=indexing.scatter_set(state.memorization, sid, values["memorization"]),
      memorization_loss=indexing.scatter_set(state.memorization_loss, sid,
                                             values["memorization_loss"]),
      generalization_error=indexing.scatter_set(state.generalization_error, sid,
                                                values["generalization_error"]),
      sums=state.sums.at[sid].add(stacked, mode="drop"),
      observations=indexing.scatter_add(state.observations, sid, jnp.ones_like(sid)),
      flipped_prob=state.flipped_prob.at[sid].set(probs, mode="drop"),
  )


def summarize(state: TurnOverState) -> dict[str, jnp.ndarray]:
  means = [indexing.safe_divide(state.sums[:, j], state.observations) for j in range(3)]
  return {
      "memorization": state.memorization,
      "memorization_loss": state.memorization_loss,
      "generalization_error": state.generalization_error,
      "memorization_mean": means[0],
      "memorization_loss_mean": means[1],
      "generalization_error_mean": means[2],
      "turnover_observations": state.observations,
  }


def own_and_flipped_logits(graphdef, params, model_state, turnover_key: jax.Array,
                           images: jnp.ndarray, mask_ids: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Eval-mode logits f32[B, C] of the sub-networks m_id and 1 - m_id for each row.

  Args:
    graphdef, params, model_state: from `models.split` of a model built with turnover_sites.
    turnover_key: the run's turn-over key (the one training used).
    images: f32[B, ...] inputs.
    mask_ids: i32[B] whose masks to use (the example's own id for self-influence; a training
      example's id for its influence on another target).
  """
  own, _ = models.apply(graphdef, params, model_state, images, train=False,
                        turnover=models.TurnOver(turnover_key, mask_ids, "own"))
  flipped, _ = models.apply(graphdef, params, model_state, images, train=False,
                            turnover=models.TurnOver(turnover_key, mask_ids, "flipped"))
  return own, flipped


def influence_on_targets(graphdef, params, model_state, turnover_key: jax.Array,
                         train_ids: jnp.ndarray, target_images: jnp.ndarray,
                         target_labels: jnp.ndarray, *, top_k: int = 10,
                         block_size: int = 32) -> dict[str, jnp.ndarray]:
  """Influence of every training example on every target, reduced to top-k lists and totals.

  Cost: 2 x N x T example forward passes in eval mode (N training ids, T targets), run as
  ceil(N / block_size) blocks of block_size x T rows; memory is bounded by one block's
  activations plus O(T x k). For N = 3,000, T = 200 (Kobayashi et al.'s demo) that is 1.2 M
  example forwards, a few seconds on a CPU for an MLP. Jit this function (static top_k,
  block_size) and chunk T in the caller if block_size x T rows do not fit.

  Args:
    graphdef, params, model_state: the trained model (built with turnover_sites).
    turnover_key: the run's turn-over key.
    train_ids: i32[N] ids of the training examples whose influence is wanted.
    target_images: f32[T, ...]; target_labels: i32[T].
    top_k: how many most helpful and most harmful training examples to keep per target.
    block_size: training examples per block.

  Returns:
    helpful_ids i32[T, k], helpful f32[T, k]: largest influences (training on i helped z most),
      in decreasing order;
    harmful_ids i32[T, k], harmful f32[T, k]: most negative influences, increasing;
    total f32[N]: sum over targets of the influence of each training example (its effect on
      the total target loss; negative = harmful to the target set).
  """
  n, t = train_ids.shape[0], target_labels.shape[0]
  k = min(top_k, n)
  num_blocks = -(-n // block_size)
  pad = num_blocks * block_size - n
  ids = jnp.concatenate([train_ids, jnp.zeros((pad,), train_ids.dtype)]).reshape(num_blocks, block_size)
  valid = (jnp.arange(num_blocks * block_size) < n).reshape(num_blocks, block_size)

  def block(carry, xs):
    blk_ids, blk_valid = xs
    rows = jnp.broadcast_to(target_images[None], (block_size,) + target_images.shape)
    rows = rows.reshape((block_size * t,) + target_images.shape[1:])
    row_ids = jnp.repeat(blk_ids, t)
    own, flipped = own_and_flipped_logits(graphdef, params, model_state, turnover_key, rows, row_ids)
    labels = jnp.tile(target_labels, block_size)
    infl = (cross_entropy(flipped, labels) - cross_entropy(own, labels)).reshape(block_size, t)
    cand_ids = jnp.broadcast_to(blk_ids[None, :], (t, block_size))
    new = []
    for sign, (best_vals, best_ids) in zip((1.0, -1.0), carry):
      vals = jnp.where(blk_valid[None, :], sign * infl.T, -jnp.inf)
      all_vals = jnp.concatenate([best_vals, vals], axis=1)
      all_ids = jnp.concatenate([best_ids, cand_ids], axis=1)
      top_vals, pos = jax.lax.top_k(all_vals, k)
      new.append((top_vals, jnp.take_along_axis(all_ids, pos, axis=1)))
    total = jnp.where(blk_valid, jnp.sum(infl, axis=1), 0.0)
    return tuple(new), total

  empty = (jnp.full((t, k), -jnp.inf, jnp.float32), jnp.full((t, k), -1, train_ids.dtype))
  (helpful, harmful), totals = jax.lax.scan(block, (empty, empty), (ids, valid))
  return {"helpful_ids": helpful[1], "helpful": helpful[0],
          "harmful_ids": harmful[1], "harmful": -harmful[0],
          "total": totals.reshape(-1)[:n]}


def scores_from_state(state: TurnOverState, ids: Any) -> dict[str, Any]:
  """The scores.npz columns of the training split (rows = `ids`)."""
  table = jax.device_get(summarize(state))
  out = {f"train/{k}": table[k][ids] for k in SUMMARY_KEYS}
  out["train/flipped_prob"] = jax.device_get(state.flipped_prob)[ids]
  return out
