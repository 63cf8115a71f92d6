"""Masked per-example gather/scatter shared by every kernel.

Padding rows (mask False) are redirected to the out-of-range id `num_examples`; scatters use
`mode="drop"` so those rows write nothing, and gathers use `mode="fill"` so they read a
harmless value. This keeps every update a single `.at[ids]` op with no Python loop and no
host sync, and it stays correct when padding rows carry duplicate or garbage ids.
"""

from __future__ import annotations

import jax.numpy as jnp


def resolve_mask(ids: jnp.ndarray, mask: jnp.ndarray | None) -> jnp.ndarray:
  """Returns `mask` as bool[B], all True when None."""
  if mask is None:
    return jnp.ones(ids.shape, dtype=bool)
  return jnp.asarray(mask, dtype=bool)


def safe_ids(ids: jnp.ndarray, mask: jnp.ndarray, num_examples: int) -> jnp.ndarray:
  """ids: i32[B], mask: bool[B] -> i32[B] with masked-out rows set to `num_examples`."""
  return jnp.where(mask, ids.astype(jnp.int32), jnp.int32(num_examples))


def gather(table: jnp.ndarray, ids: jnp.ndarray, fill_value=0) -> jnp.ndarray:
  """table[ids] where out-of-range ids (padding) read `fill_value`."""
  return table.at[ids].get(mode="fill", fill_value=fill_value)


def scatter_set(table: jnp.ndarray, ids: jnp.ndarray, values: jnp.ndarray) -> jnp.ndarray:
  """table.at[ids].set(values), dropping out-of-range ids (padding)."""
  return table.at[ids].set(values.astype(table.dtype), mode="drop")


def scatter_add(table: jnp.ndarray, ids: jnp.ndarray, values: jnp.ndarray) -> jnp.ndarray:
  """table.at[ids].add(values), dropping out-of-range ids (padding)."""
  return table.at[ids].add(values.astype(table.dtype), mode="drop")


def correct(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
  """logits: f32[B, C], labels: i32[B] -> bool[B], `argmax(logits) == label` (first max wins)."""
  return jnp.argmax(logits, axis=-1) == labels


def safe_divide(numerator: jnp.ndarray, count: jnp.ndarray) -> jnp.ndarray:
  """numerator / count as float32, NaN where count == 0 (never observed)."""
  count = count.astype(jnp.float32)
  return jnp.where(count > 0, numerator / jnp.maximum(count, 1.0), jnp.nan).astype(jnp.float32)


def first_occurrence(ids: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  """bool[B]: True for the first masked row of each id, False for repeats and padding.

  Batches drawn with replacement (importance sampling) can hold an id twice; the kernels need
  unique ids per update, so callers track `mask & first_occurrence(ids, mask)`.
  """
  order = jnp.argsort(jnp.where(mask, ids, jnp.iinfo(jnp.int32).max), stable=True)
  sorted_ids = ids[order]
  sorted_mask = mask[order]
  repeat = jnp.concatenate([jnp.zeros((1,), bool), sorted_ids[1:] == sorted_ids[:-1]])
  first_sorted = sorted_mask & ~(repeat & jnp.concatenate([jnp.zeros((1,), bool),
                                                            sorted_mask[:-1]]))
  return jnp.zeros_like(mask).at[order].set(first_sorted)
