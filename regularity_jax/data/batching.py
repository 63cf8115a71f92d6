"""Fixed-shape epoch batches over an on-device dataset, with a padding mask.

Every epoch is a permutation drawn from a PRNG key, cut into `num_steps` rows of
`batch_size` positions. The last row is filled up by wrapping around to the start of the
permutation (real examples, so batch-norm statistics stay sensible) and those filler rows have
mask False: no example is dropped and none is counted twice. An optional boolean `active`
vector restricts the epoch to a subset (dynamic training-set reduction, online selection)
without changing any shape, so nothing recompiles when the subset changes.

Two plans of the same shape: `epoch_batches` (the default, `epoch_plan="permutation"`) draws
`jax.random.permutation`, which sorts N keys on every device; `bijection_batches`
(`epoch_plan="bijection"`) evaluates a counter-based permutation (`data.bijection`) at each
position of the matrix, so each device computes only its own columns and nothing of size N.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from regularity_jax.data import bijection


def num_steps(num_active: int, batch_size: int) -> int:
  """Steps needed to present `num_active` examples once in batches of `batch_size`."""
  return max(1, math.ceil(num_active / batch_size))


def epoch_batches(key: jax.Array, num_examples: int, batch_size: int,
                  active: jnp.ndarray | None = None) -> tuple[jnp.ndarray, jnp.ndarray]:
  """A shuffled epoch as a padded index matrix.

  Args:
    key: PRNG key of this epoch (e.g. `fold_in(data_key, epoch)`).
    num_examples: N, the number of rows of the on-device split.
    batch_size: B.
    active: optional bool[N]; only active rows are presented, in shuffled order, first.

  Returns:
    positions: i32[S, B] row indices into the split arrays, S = ceil(N / B) (fixed for a
      given N and B, whatever `active` holds).
    mask: bool[S, B], True exactly once for every active row. With `active`, steps past
      `num_steps(active.sum(), B)` are all padding and may be skipped by the caller.
  """
  steps = num_steps(num_examples, batch_size)
  perm = jax.random.permutation(key, num_examples).astype(jnp.int32)
  if active is None:
    count = num_examples
  else:
    active = jnp.asarray(active, bool)
    perm = perm[jnp.argsort(~active[perm], stable=True)]  # active rows first, order kept
    count = jnp.sum(active)
  total = steps * batch_size
  positions = jnp.resize(perm, (total,))  # wraps around: filler rows are real examples
  mask = jnp.arange(total) < count
  return positions.reshape(steps, batch_size), mask.reshape(steps, batch_size)


def bijection_batches(key: jax.Array, num_examples: int, batch_size: int,
                      active: jnp.ndarray | None = None) -> tuple[jnp.ndarray, jnp.ndarray]:
  """A shuffled epoch as a padded index matrix, position by position (`data.bijection`).

  Args:
    key: PRNG key of this epoch (e.g. `fold_in(data_key, epoch)`); the round keys come from it.
    num_examples: N.
    batch_size: B.
    active: optional bool[N]; inactive rows keep their place and are masked out (unlike
      `epoch_batches`, active rows are not moved first: that would need N-sized work).

  Returns:
    positions: i32[S, B], S = ceil(N / B): flat position p = s * B + b holds the example at
      p mod N of the keyed permutation (the last row wraps around to the start, as in
      `epoch_batches`), computed elementwise, so a column-sharded output is computed shard by
      shard.
    mask: bool[S, B], p < N (and the example active): True exactly once for every example.
  """
  steps = num_steps(num_examples, batch_size)
  flat = (jnp.arange(steps, dtype=jnp.int32)[:, None] * batch_size
          + jnp.arange(batch_size, dtype=jnp.int32)[None, :])  # 2-D: shards by column
  positions = bijection.permute(flat % num_examples, bijection.round_keys(key), num_examples)
  mask = flat < num_examples
  if active is not None:
    mask = mask & jnp.asarray(active, bool)[positions]
  return positions, mask


def eval_batches(num_examples: int, batch_size: int) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Positions 0..N-1 in order as i32[S, B] with a padding mask bool[S, B]."""
  steps = num_steps(num_examples, batch_size)
  flat = jnp.arange(steps * batch_size, dtype=jnp.int32)
  return (flat % max(num_examples, 1)).reshape(steps, batch_size), (
      flat < num_examples).reshape(steps, batch_size)
