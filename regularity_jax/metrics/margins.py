"""Logit margins and the area under the margin, AUM (Pleiss et al. 2020, arXiv 2001.10528).

The logit margin of an example is `logit[y] - max_{j != y} logit[j]`: positive when it is
classified correctly with a unique maximum, 0 on a tie between the label and another class.
AUM averages it over observations; a low or negative AUM flags mislabelled or hard examples.

Summary keys (each an array of shape [num_examples]):

  last_margin   f32  logit margin at the latest observation; NaN if never observed.
  aum           f32  mean logit margin over observations; NaN if never observed.
  observations  i32  number of observations.

and `dropped` (i32[], a scalar): unmasked rows never counted because their id was outside
[0, num_examples) or repeated an id already counted in the same update (`indexing`).

Normalized margins (divided by a network-norm normalizer) are computed by the training engine,
which knows the network, from `logit_margin`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from regularity_jax.metrics import indexing

SUMMARY_KEYS = ("last_margin", "aum", "observations")


def logit_margin(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
  """logits: [B, C] (any float dtype), labels: i32[B] -> f32[B] `logit[y] - max_{j!=y} logit[j]`."""
  logits = logits.astype(jnp.float32)
  is_label = jnp.arange(logits.shape[-1]) == labels[:, None]
  true = jnp.sum(jnp.where(is_label, logits, 0.0), axis=-1)
  other = jnp.max(jnp.where(is_label, -jnp.inf, logits), axis=-1)
  return true - other


class MarginState(NamedTuple):
  """Per-example running state; every field has shape [num_examples]."""
  last_margin: jnp.ndarray   # f32, NaN before the first observation
  margin_sum: jnp.ndarray    # f32
  observations: jnp.ndarray  # i32
  dropped: jnp.ndarray       # i32[], rows dropped (see `indexing.select_rows`)


def init(num_examples: int) -> MarginState:
  """Returns the state of `num_examples` examples that have not been observed yet."""
  return MarginState(
      last_margin=jnp.full((num_examples,), jnp.nan, jnp.float32),
      margin_sum=jnp.zeros((num_examples,), jnp.float32),
      observations=jnp.zeros((num_examples,), jnp.int32),
      dropped=indexing.no_drops(),
  )


def update(state: MarginState, ids: jnp.ndarray, logits: jnp.ndarray,
           labels: jnp.ndarray, mask: jnp.ndarray | None = None) -> MarginState:
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
  margin = logit_margin(logits, labels)
  return MarginState(
      last_margin=indexing.scatter_set(state.last_margin, sid, margin),
      margin_sum=indexing.scatter_add(state.margin_sum, sid, margin),
      observations=indexing.scatter_add(state.observations, sid, jnp.ones_like(sid)),
      dropped=state.dropped + rows.dropped,
  )


def summarize(state: MarginState) -> dict[str, jnp.ndarray]:
  """Returns the summary table (see the module docstring for every key)."""
  return {
      "last_margin": state.last_margin,
      "aum": indexing.safe_divide(state.margin_sum, state.observations),
      "observations": state.observations,
      "dropped": state.dropped,
  }
