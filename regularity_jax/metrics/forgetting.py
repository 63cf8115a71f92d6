"""Forgetting and learning events per example (Toneva et al. 2019, arXiv 1812.05159).

Fed by the presentation stream (train-mode logits of each training step) this gives Toneva's
forgetting statistics for training examples; fed by the evaluation stream of the test split,
its `forgetting_events` are the mal-generalizing events of Zhang et al. 2021 (arXiv 2108.03913).

An observation is `correct = argmax(logits) == label` (the first maximal index wins ties).

Summary keys (each an array of shape [num_examples]):

  forgetting_events  i32  previous observation correct, this one wrong.
  learning_events    i32  previous observation wrong (or none yet), this one correct.
  first_learned      i32  0-based index, among this example's own observations, of its first
                          correct one; -1 if it was never correct.
  first_forgotten    i32  0-based index, among this example's own observations, of its first
                          forgetting event (the wrong observation); -1 if it was never forgotten.
                          With one presentation per epoch, an example is unforgettable by epoch
                          e (e epochs seen) iff 0 <= first_learned <= e - 1 and
                          (first_forgotten == -1 or first_forgotten > e - 1).
  unforgettable      bool learned at least once and never forgotten.
  never_learned      bool observed at least once and never correct. Rank these as the most
                          forgotten (Toneva), never as "0 forgetting events": the ranking
                          is `metrics.difficulty`'s "forgetting" score.
  observations       i32  number of observations.

and `dropped` (i32[], a scalar): unmasked rows never counted because their id was outside
[0, num_examples) or repeated an id already counted in the same update (`indexing`).

An example that was never observed has observations == 0, first_learned == first_forgotten == -1 and is neither
unforgettable nor never_learned.

Example:
  state = forgetting.init(50_000)
  state = forgetting.update(state, ids, logits, labels, mask)   # inside the jitted step
  table = forgetting.summarize(state)
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from regularity_jax.metrics import indexing

SUMMARY_KEYS = ("forgetting_events", "learning_events", "first_learned", "first_forgotten",
                "unforgettable", "never_learned", "observations")


class ForgettingState(NamedTuple):
  """Per-example running state; every field has shape [num_examples]."""
  prev_correct: jnp.ndarray       # bool, the last observation (False before any)
  forgetting_events: jnp.ndarray  # i32
  learning_events: jnp.ndarray    # i32
  first_learned: jnp.ndarray      # i32, -1 until the first correct observation
  first_forgotten: jnp.ndarray    # i32, -1 until the first forgetting event
  observations: jnp.ndarray       # i32
  dropped: jnp.ndarray            # i32[], rows dropped (see `indexing.select_rows`)


def init(num_examples: int) -> ForgettingState:
  """Returns the state of `num_examples` examples that have not been observed yet."""
  # Distinct buffers per field, so that the state can be donated to a jitted step.
  zeros = lambda: jnp.zeros((num_examples,), jnp.int32)  # pylint: disable=unnecessary-lambda-assignment
  return ForgettingState(
      prev_correct=jnp.zeros((num_examples,), bool),
      forgetting_events=zeros(),
      learning_events=zeros(),
      first_learned=jnp.full((num_examples,), -1, jnp.int32),
      first_forgotten=jnp.full((num_examples,), -1, jnp.int32),
      observations=zeros(),
      dropped=indexing.no_drops(),
  )


def update(state: ForgettingState, ids: jnp.ndarray, logits: jnp.ndarray,
           labels: jnp.ndarray, mask: jnp.ndarray | None = None) -> ForgettingState:
  """Adds one observation of each unmasked example in a batch.

  Args:
    state: from `init` or a previous `update`.
    ids: i32[B] example ids; an unmasked row whose id is outside [0, N) or repeats an earlier
      row's id changes nothing but the `dropped` count.
    logits: f32[B, C] (any float dtype).
    labels: i32[B].
    mask: bool[B] or None; rows with False change nothing (padding).

  Returns:
    The updated state. Pure and jit-able; one gather and one scatter per field.
  """
  n = state.observations.shape[0]
  rows = indexing.select_rows(ids, mask, n)
  sid = rows.ids
  now = indexing.correct(logits, labels)
  prev = indexing.gather(state.prev_correct, sid, False)
  seen = indexing.gather(state.observations, sid, 0)
  first = indexing.gather(state.first_learned, sid, -1)
  first_forgot = indexing.gather(state.first_forgotten, sid, -1)
  learned = now & ~prev
  forgot = prev & ~now
  return ForgettingState(
      prev_correct=indexing.scatter_set(state.prev_correct, sid, now),
      forgetting_events=indexing.scatter_add(state.forgetting_events, sid, forgot),
      learning_events=indexing.scatter_add(state.learning_events, sid, learned),
      first_learned=indexing.scatter_set(
          state.first_learned, sid, jnp.where((first < 0) & now, seen, first)),
      first_forgotten=indexing.scatter_set(
          state.first_forgotten, sid, jnp.where((first_forgot < 0) & forgot, seen, first_forgot)),
      observations=indexing.scatter_add(state.observations, sid, jnp.ones_like(seen)),
      dropped=state.dropped + rows.dropped,
  )


def summarize(state: ForgettingState) -> dict[str, jnp.ndarray]:
  """Returns the summary table (see the module docstring for every key)."""
  ever = state.first_learned >= 0
  return {
      "forgetting_events": state.forgetting_events,
      "learning_events": state.learning_events,
      "first_learned": state.first_learned,
      "first_forgotten": state.first_forgotten,
      "unforgettable": ever & (state.forgetting_events == 0),
      "never_learned": (state.observations > 0) & ~ever,
      "observations": state.observations,
      "dropped": state.dropped,
  }
