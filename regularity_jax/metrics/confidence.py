"""Confidence and variability for data maps (Swayamdipta et al. 2020, arXiv 2009.10795).

Confidence is the mean over observations of `softmax(logits)[y]`, variability its standard
deviation (population std, ddof=0, as in the paper's code), correctness the fraction of
observations classified correctly. The running mean and variance use Welford's update, so
long runs do not lose precision to cancellation.

Summary keys (each an array of shape [num_examples]):

  confidence    f32  mean p(true label); NaN if never observed.
  variability   f32  std of p(true label) over observations; NaN if never observed.
  correctness   f32  fraction of observations classified correctly; NaN if never observed.
  observations  i32  number of observations.

and `dropped` (i32[], a scalar): unmasked rows never counted because their id was outside
[0, num_examples) or repeated an id already counted in the same update (`indexing`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from regularity_jax.metrics import indexing

SUMMARY_KEYS = ("confidence", "variability", "correctness", "observations")


def true_class_probability(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
  """logits: [B, C], labels: i32[B] -> f32[B] softmax(logits)[y]."""
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return jnp.exp(jnp.take_along_axis(log_p, labels[:, None].astype(jnp.int32), axis=-1)[:, 0])


class ConfidenceState(NamedTuple):
  """Per-example running state; every field has shape [num_examples]."""
  mean: jnp.ndarray          # f32 running mean of p(y)
  m2: jnp.ndarray            # f32 running sum of squared deviations (Welford)
  num_correct: jnp.ndarray   # i32
  observations: jnp.ndarray  # i32
  dropped: jnp.ndarray       # i32[], rows dropped (see `indexing.select_rows`)


def init(num_examples: int) -> ConfidenceState:
  """Returns the state of `num_examples` examples that have not been observed yet."""
  f32, i32 = jnp.zeros((num_examples,), jnp.float32), jnp.zeros((num_examples,), jnp.int32)
  return ConfidenceState(mean=f32, m2=f32.copy(), num_correct=i32, observations=i32.copy(),
                         dropped=indexing.no_drops())


def update(state: ConfidenceState, ids: jnp.ndarray, logits: jnp.ndarray,
           labels: jnp.ndarray, mask: jnp.ndarray | None = None) -> ConfidenceState:
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
  p = true_class_probability(logits, labels)
  count = indexing.gather(state.observations, sid, 0) + 1
  mean = indexing.gather(state.mean, sid, 0.0)
  delta = p - mean
  new_mean = mean + delta / count.astype(jnp.float32)
  m2 = indexing.gather(state.m2, sid, 0.0) + delta * (p - new_mean)
  return ConfidenceState(
      mean=indexing.scatter_set(state.mean, sid, new_mean),
      m2=indexing.scatter_set(state.m2, sid, m2),
      num_correct=indexing.scatter_add(state.num_correct, sid, indexing.correct(logits, labels)),
      observations=indexing.scatter_set(state.observations, sid, count),
      dropped=state.dropped + rows.dropped,
  )


def summarize(state: ConfidenceState) -> dict[str, jnp.ndarray]:
  """Returns the summary table (see the module docstring for every key)."""
  seen = state.observations > 0
  nan = jnp.float32(jnp.nan)
  variance = indexing.safe_divide(jnp.maximum(state.m2, 0.0), state.observations)
  return {
      "confidence": jnp.where(seen, state.mean, nan),
      "variability": jnp.sqrt(variance),
      "correctness": indexing.safe_divide(state.num_correct.astype(jnp.float32),
                                          state.observations),
      "observations": state.observations,
      "dropped": state.dropped,
  }
