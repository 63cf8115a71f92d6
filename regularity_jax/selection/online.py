"""Online prioritization kernels: fixed shapes, pure state, jit-able, no host sync.

Loss-based prioritization speeds up clean training and degrades under label or input noise
(Hu et al. 2021, arXiv 2107.07741); these are the methods that paper tests, plus InfoBatch,
and a noise-aware mask to combine with any of them.

  Selective-Backprop  (Jiang et al. 2019, arXiv 1910.00762)  `SBState`, `sb_init`, `sb_update`,
                      `sb_probability`, `sb_select`: backprop an example with probability
                      CDF(loss)^beta over a ring buffer of recent losses.
  importance sampling `importance_probabilities`, `sample_indices`, `importance_weights`:
                      sample with replacement proportionally to (smoothed) last-known losses,
                      optionally reweighting by 1 / (N p_i) to stay unbiased.
  InfoBatch           (Qin et al. ICLR 2024, arXiv 2303.04947) `infobatch_plan`: each epoch
                      drop a random fraction of below-mean-loss examples, rescale the rest.
  noise-aware         `noise_aware_mask`: exclude the examples with the top noise scores
                      (forgetting events, turn-over memorization) before any of the above.

What the training loop owns (not here): the first epoch of Selective-Backprop uses every
example; whether importance sampling reweights; how the masks are combined (`&`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

# ------------------------------------------------------------------ Selective-Backprop


class SBState(NamedTuple):
  """Ring buffer of the most recent losses."""
  history: jnp.ndarray  # f32[H]; slots [0, count) are valid
  count: jnp.ndarray    # i32[], number of valid slots, min(losses pushed, H)
  pos: jnp.ndarray      # i32[], the slot the next loss goes to


def sb_init(history_size: int = 1024) -> SBState:
  """An empty history of H = `history_size` losses (the paper uses 1024)."""
  if history_size < 1:
    raise ValueError(f"history_size must be >= 1, got {history_size}")
  return SBState(history=jnp.zeros((history_size,), jnp.float32),
                 count=jnp.zeros((), jnp.int32), pos=jnp.zeros((), jnp.int32))


def sb_update(state: SBState, losses: jnp.ndarray, mask: jnp.ndarray | None = None) -> SBState:
  """Pushes the losses of the real rows, in row order, overwriting the oldest ones.

  Args:
    state: from `sb_init` or a previous `sb_update`.
    losses: f32[B] per-example losses (any float dtype).
    mask: bool[B] or None; rows with False (padding) are not pushed.

  Returns:
    The new state. If more than H rows are real, only the last H of them are kept.
  """
  h = state.history.shape[0]
  mask = jnp.ones(losses.shape, bool) if mask is None else jnp.asarray(mask, bool)
  n = jnp.sum(mask, dtype=jnp.int32)
  rank = jnp.cumsum(mask, dtype=jnp.int32) - 1
  # Only the last H real rows survive; dropping the others keeps the scatter free of duplicates.
  slot = jnp.where(mask & (rank >= n - h), (state.pos + rank) % h, h)
  return SBState(history=state.history.at[slot].set(losses.astype(jnp.float32), mode="drop"),
                 count=jnp.minimum(state.count + n, h), pos=(state.pos + n) % h)


def sb_probability(state: SBState, losses: jnp.ndarray, beta: float | jnp.ndarray) -> jnp.ndarray:
  """Selection probability CDF(loss)^beta, f32[B].

  CDF(x) is the fraction of the valid history <= x (empirical CDF). With an empty history
  every probability is 1. Losses drawn from the same distribution as the history have
  E[CDF] ~= 1/2, so beta = 1 keeps about half of them; larger beta keeps fewer. A NaN loss has
  probability 0 (for beta > 0).

  The reference implementation pushes a loss before ranking it; to do the same, call
  `sb_update` first. O(B * H) compares, no sort.

  Args:
    state: the history.
    losses: f32[B].
    beta: the selectivity, > 0 (a Python float or a traced scalar).
  """
  h = state.history.shape[0]
  valid = jnp.arange(h) < state.count
  below = valid[None, :] & (state.history[None, :] <= losses.astype(jnp.float32)[:, None])
  cdf = jnp.sum(below, axis=1, dtype=jnp.int32) / jnp.maximum(state.count, 1)
  return jnp.where(state.count > 0, cdf.astype(jnp.float32) ** beta, 1.0).astype(jnp.float32)


def sb_select(key: jax.Array, state: SBState, losses: jnp.ndarray, mask: jnp.ndarray | None,
              beta: float | jnp.ndarray) -> jnp.ndarray:
  """bool[B]: row i is backpropagated iff it is real and U_i < `sb_probability`_i.

  Uses `state` as given (see `sb_probability` on pushing first). The first epoch of
  Selective-Backprop uses every example; the loop enforces that, not this function.
  """
  prob = sb_probability(state, losses, beta)
  mask = jnp.ones(losses.shape, bool) if mask is None else jnp.asarray(mask, bool)
  return mask & (jax.random.uniform(key, losses.shape) < prob)


# ------------------------------------------------------------------ importance sampling


def importance_probabilities(losses: jnp.ndarray, smoothing: float | jnp.ndarray = 0.0,
                             mask: jnp.ndarray | None = None) -> jnp.ndarray:
  """Sampling distribution f32[N] proportional to the losses, mixed with the uniform one.

  p = (1 - smoothing) * l / sum(l) + smoothing / M over the M allowed examples (`mask`, all by
  default); p = 0 outside the mask. Negative losses count as 0; a non-finite loss (NaN: never
  seen) counts as the largest finite one, so unseen examples are sampled first rather than
  never. If every allowed loss is 0, p is uniform.

  Args:
    losses: f32[N], e.g. the last-known per-example losses.
    smoothing: in [0, 1]; 1 gives uniform sampling.
    mask: bool[N] or None; False excludes an example (e.g. `noise_aware_mask`).
  """
  losses = losses.astype(jnp.float32)
  allowed = jnp.ones(losses.shape, bool) if mask is None else jnp.asarray(mask, bool)
  finite = jnp.isfinite(losses)
  fill = jnp.max(jnp.where(finite, losses, 0.0), initial=0.0)
  value = jnp.where(allowed, jnp.maximum(jnp.where(finite, losses, fill), 0.0), 0.0)
  uniform = allowed / jnp.maximum(jnp.sum(allowed), 1)
  total = jnp.sum(value)
  proportional = jnp.where(total > 0, value / jnp.where(total > 0, total, 1.0), uniform)
  return ((1.0 - smoothing) * proportional + smoothing * uniform).astype(jnp.float32)


def sample_indices(key: jax.Array, probs: jnp.ndarray, batch: int) -> jnp.ndarray:
  """i32[batch] example positions drawn i.i.d. from `probs` (f32[N]), with replacement.

  `batch` must be static under jit.
  """
  n = probs.shape[0]
  return jax.random.choice(key, n, (batch,), replace=True, p=probs).astype(jnp.int32)


def importance_weights(probs: jnp.ndarray, indices: jnp.ndarray,
                       population: int | jnp.ndarray | None = None) -> jnp.ndarray:
  """Unbiasing weights f32[B] = 1 / (N p_i) of sampled positions `indices` (i32[B]).

  E over i ~ p of w_i f_i = (1/N) sum_j f_j: the weighted batch mean estimates the uniform
  mean. N = `population`, default probs.shape[0]; pass the number of allowed examples when
  `probs` was masked to estimate their mean instead.
  """
  n = probs.shape[0] if population is None else population
  return (1.0 / (n * probs[indices])).astype(jnp.float32)


# ------------------------------------------------------------------ InfoBatch


def infobatch_plan(key: jax.Array, losses: jnp.ndarray, seen: jnp.ndarray,
                   prune_ratio: float | jnp.ndarray, epoch: int | jnp.ndarray,
                   num_epochs: int | jnp.ndarray,
                   anneal: float | jnp.ndarray = 0.875) -> tuple[jnp.ndarray, jnp.ndarray]:
  """One epoch of InfoBatch: which examples to train on and their loss weights.

  The well-learned examples are those seen with a loss strictly below the mean loss of the
  seen examples. A uniformly random (1 - r) share of them is kept with weight 1 / (1 - r), the
  others are skipped this epoch (weight 0); every other example (above the mean, or not seen
  yet) is kept with weight 1. Once epoch >= anneal * num_epochs, every example is kept with
  weight 1 (the paper's annealing).

  The kept count is (1 - r) * n_below when that is an integer and otherwise one of its two
  neighbours, chosen by stochastic rounding, so that every below-mean example is kept with
  probability exactly 1 - r: the expected weighted sum of per-example gradients equals the
  full sum for any n_below (the paper's int() truncation is biased by up to one example).

  Args:
    key: PRNG key for this epoch (e.g. fold_in of the epoch).
    losses: f32[N] last-known per-example losses; ignored where not `seen`.
    seen: bool[N] which losses are known (and, combined with a noise mask, which count).
    prune_ratio: r in [0, 1).
    epoch: 0-based epoch.
    num_epochs: total epochs.
    anneal: fraction of training after which pruning stops.

  Returns:
    (active bool[N], weights f32[N]); weights are 0 where not active.
  """
  if isinstance(prune_ratio, (int, float)) and not 0.0 <= prune_ratio < 1.0:
    raise ValueError(f"prune_ratio must be in [0, 1), got {prune_ratio}")
  losses = losses.astype(jnp.float32)
  seen = jnp.asarray(seen, bool)
  n_seen = jnp.sum(seen, dtype=jnp.int32)
  mean = jnp.sum(jnp.where(seen, losses, 0.0)) / jnp.maximum(n_seen, 1)
  below = seen & (losses < mean)
  n_below = jnp.sum(below, dtype=jnp.int32)
  key_round, key_order = jax.random.split(key)
  keep = (1.0 - prune_ratio) * n_below.astype(jnp.float32)
  nearest = jnp.round(keep)
  # Snap float32 error (0.7 * 10 = 6.9999995) so integer budgets are exact, not stochastic.
  keep = jnp.where(jnp.abs(keep - nearest) <= 8 * jnp.finfo(jnp.float32).eps * jnp.maximum(
      keep, 1.0), nearest, keep)
  num_keep = jnp.floor(keep + jax.random.uniform(key_round)).astype(jnp.int32)
  order = jnp.argsort(jnp.where(below, jax.random.uniform(key_order, losses.shape), 2.0))
  rank = jnp.zeros(losses.shape, jnp.int32).at[order].set(jnp.arange(losses.shape[0],
                                                                      dtype=jnp.int32))
  kept_below = below & (rank < num_keep)
  active = ~below | kept_below
  weights = jnp.where(kept_below, 1.0 / (1.0 - prune_ratio), jnp.where(active, 1.0, 0.0))
  pruning = epoch < anneal * num_epochs
  return (jnp.where(pruning, active, True),
          jnp.where(pruning, weights, 1.0).astype(jnp.float32))


# ------------------------------------------------------------------ noise-aware


def noise_aware_mask(flag_scores: jnp.ndarray, fraction: float | jnp.ndarray,
                     key: jax.Array | None = None) -> jnp.ndarray:
  """bool[N], False for the round(fraction * N) examples with the highest noise score.

  Combine with any method above by `&` (or as the `mask` of `importance_probabilities`).
  Higher flag score = more likely noisy: forgetting events with never-learned at +inf
  (Toneva: noisy examples are the most forgotten), or turn-over memorization. NaN scores
  (never observed) are never excluded. Ties are broken by a random order from `key`, or by
  position (lower first) when `key` is None.

  Args:
    flag_scores: f32[N].
    fraction: in [0, 1] (halves round to even, like Python's round).
    key: optional PRNG key for tie-breaking.
  """
  scores = flag_scores.astype(jnp.float32)
  n = scores.shape[0]
  nan = jnp.isnan(scores)
  tiebreak = (jnp.arange(n) if key is None else jax.random.permutation(key, n))
  order = jnp.lexsort((tiebreak, -jnp.where(nan, 0.0, scores), nan))
  rank = jnp.zeros((n,), jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
  num_flagged = jnp.round(fraction * n).astype(jnp.int32)
  return ~((rank < num_flagged) & ~nan)
