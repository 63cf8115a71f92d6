"""Cumulative correctness per example: CBTL and CBGL (Zhang et al. 2021, arXiv 2108.03913).

Fed by the presentation stream of the training split, `cumulative_correct` is the cumulative
binary training loss statistic CBTL (number of correct presentations); fed by the evaluation
stream of the test split it is CBGL (number of correct evaluations). The paper counts
correct classifications, so larger means more regular.

Summary keys (each an array of shape [num_examples]):

  cumulative_correct  i32  number of correct observations (CBTL / CBGL).
  observations        i32  number of observations.
  mean_correct        f32  cumulative_correct / observations; NaN if never observed.

and `dropped` (i32[], a scalar): unmasked rows never counted because their id was outside
[0, num_examples) or repeated an id already counted in the same update (`indexing`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from regularity_jax.metrics import indexing

SUMMARY_KEYS = ("cumulative_correct", "observations", "mean_correct")


class CumulativeState(NamedTuple):
  """Per-example running state; every field has shape [num_examples]."""
  cumulative_correct: jnp.ndarray  # i32
  observations: jnp.ndarray        # i32
  dropped: jnp.ndarray             # i32[], rows dropped (see `indexing.select_rows`)


def init(num_examples: int) -> CumulativeState:
  """Returns the state of `num_examples` examples that have not been observed yet."""
  return CumulativeState(cumulative_correct=jnp.zeros((num_examples,), jnp.int32),
                         observations=jnp.zeros((num_examples,), jnp.int32),
                         dropped=indexing.no_drops())


def update(state: CumulativeState, ids: jnp.ndarray, logits: jnp.ndarray,
           labels: jnp.ndarray, mask: jnp.ndarray | None = None) -> CumulativeState:
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
  now = indexing.correct(logits, labels)
  return CumulativeState(
      cumulative_correct=indexing.scatter_add(state.cumulative_correct, sid, now),
      observations=indexing.scatter_add(state.observations, sid, jnp.ones_like(sid)),
      dropped=state.dropped + rows.dropped,
  )


def summarize(state: CumulativeState) -> dict[str, jnp.ndarray]:
  """Returns the summary table (see the module docstring for every key)."""
  return {
      "cumulative_correct": state.cumulative_correct,
      "observations": state.observations,
      "mean_correct": indexing.safe_divide(
          state.cumulative_correct.astype(jnp.float32), state.observations),
      "dropped": state.dropped,
  }
