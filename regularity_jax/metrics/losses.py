"""Per-example loss and EL2N over observations: the inputs of loss-based prioritization
(Selective-Backprop, importance sampling, InfoBatch) and of EL2N scores (Paul et al. 2021).

Summary keys (each an array of shape [num_examples]):

  last_loss     f32  cross-entropy at the latest observation; NaN if never observed.
  mean_loss     f32  mean cross-entropy over observations; NaN if never observed.
  last_el2n     f32  `||softmax(logits) - onehot(y)||_2` at the latest observation.
  mean_el2n     f32  its mean over observations (Paul et al. average EL2N over runs early in
                     training; over presentations it is the single-run analogue).
  observations  i32  number of observations.

and `dropped` (i32[], a scalar): unmasked rows never counted because their id was outside
[0, num_examples) or repeated an id already counted in the same update (`indexing`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from regularity_jax.metrics import indexing
from regularity_jax.metrics.scores import el2n

SUMMARY_KEYS = ("last_loss", "mean_loss", "last_el2n", "mean_el2n", "observations")


def cross_entropy(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
  """logits: [B, C] (any float dtype), labels: i32[B] -> f32[B] `-log softmax(logits)[y]`,
  optax's, computed in float32 (the one cross-entropy of the package). optax is imported
  here, at trace time, so that `import regularity_jax.metrics` needs only JAX and NumPy."""
  try:
    import optax  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f"the loss kernel computes optax's cross-entropy, and optax is not "
                      f"importable ({e}); pip install optax (or the package: pip install "
                      "regularity_jax)") from e
  return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32),
                                                         labels.astype(jnp.int32))


class LossState(NamedTuple):
  """Per-example running state; every field has shape [num_examples]."""
  last_loss: jnp.ndarray     # f32, NaN before the first observation
  loss_sum: jnp.ndarray      # f32
  last_el2n: jnp.ndarray     # f32, NaN before the first observation
  el2n_sum: jnp.ndarray      # f32
  observations: jnp.ndarray  # i32
  dropped: jnp.ndarray       # i32[], rows dropped (see `indexing.select_rows`)


def init(num_examples: int) -> LossState:
  """Returns the state of `num_examples` examples that have not been observed yet."""
  nan = lambda: jnp.full((num_examples,), jnp.nan, jnp.float32)  # pylint: disable=unnecessary-lambda-assignment
  zero = lambda: jnp.zeros((num_examples,), jnp.float32)  # pylint: disable=unnecessary-lambda-assignment
  return LossState(last_loss=nan(), loss_sum=zero(), last_el2n=nan(), el2n_sum=zero(),
                   observations=jnp.zeros((num_examples,), jnp.int32),
                   dropped=indexing.no_drops())


def update(state: LossState, ids: jnp.ndarray, logits: jnp.ndarray, labels: jnp.ndarray,
           mask: jnp.ndarray | None = None) -> LossState:
  """Adds one observation of each unmasked example.

  Args:
    state: from `init` or a previous `update`.
    ids: i32[B] example ids; an unmasked row whose id is outside [0, N) or repeats an earlier
      row's id changes nothing but the `dropped` count.
    logits: f32[B, C].
    labels: i32[B].
    mask: bool[B] or None; rows with False change nothing (padding).
  """
  n = state.observations.shape[0]
  rows = indexing.select_rows(ids, mask, n)
  sid = rows.ids
  loss = cross_entropy(logits, labels)
  score = el2n(logits, labels)
  return LossState(
      last_loss=indexing.scatter_set(state.last_loss, sid, loss),
      loss_sum=indexing.scatter_add(state.loss_sum, sid, loss),
      last_el2n=indexing.scatter_set(state.last_el2n, sid, score),
      el2n_sum=indexing.scatter_add(state.el2n_sum, sid, score),
      observations=indexing.scatter_add(state.observations, sid, jnp.ones_like(sid)),
      dropped=state.dropped + rows.dropped,
  )


def summarize(state: LossState) -> dict[str, jnp.ndarray]:
  """Returns the summary table (see the module docstring for every key)."""
  return {
      "last_loss": state.last_loss,
      "mean_loss": indexing.safe_divide(state.loss_sum, state.observations),
      "last_el2n": state.last_el2n,
      "mean_el2n": indexing.safe_divide(state.el2n_sum, state.observations),
      "observations": state.observations,
      "dropped": state.dropped,
  }
