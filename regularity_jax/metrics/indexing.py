"""Masked per-example gather/scatter shared by every kernel, and the id rules they all follow.

The rows an update counts (`select_rows`): the mask is True, the id lies in [0, N), and it is
the first such row of its id in the batch. Every other unmasked row is *dropped*: an id
outside [0, N) (which `.at[]` would otherwise wrap, -1 writing row N-1, or silently lose) or
a repeat of an id already counted in this update. Dropped rows are counted in each kernel's
state (`dropped`, reported by `summarize`). A caller can also make them fail the step: trace it
inside `with indexing.debug_checks():` and functionalize it with
`jax.experimental.checkify.checkify(step, errors=checkify.user_checks)`:

    with indexing.debug_checks():
      err, state = jax.jit(checkify.checkify(update, errors=checkify.user_checks))(state, ...)
    err.throw()

The checks are left out of programs traced elsewhere: `checkify.debug_check` gives each check
a process-wide new error code, so a program that holds one lowers to new text at every trace and
never hits JAX's persistent compilation cache (a rerun or a resumed run would compile its step
again).

Rows that do not count are redirected to the out-of-range id `num_examples`; scatters use
`mode="drop"` so those rows write nothing, and gathers use `mode="fill"` so they read a
harmless value. Every update stays a single `.at[ids]` op with no Python loop and no host sync.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator, NamedTuple

from jax.experimental import checkify
import jax.numpy as jnp


_DEBUG_CHECKS = contextvars.ContextVar("regularity_jax_debug_checks", default=False)


@contextlib.contextmanager
def debug_checks(enabled: bool = True) -> Iterator[None]:
  """Programs traced inside this block hold the id checks `checkify.checkify` turns into errors.

  Without it (the default) the checks are not traced, so each program lowers to the same text
  at every trace and JAX's persistent compilation cache serves it again.
  """
  token = _DEBUG_CHECKS.set(enabled)
  try:
    yield
  finally:
    _DEBUG_CHECKS.reset(token)


class Rows(NamedTuple):
  """The rows of one update, as every kernel sees them."""
  ids: jnp.ndarray      # i32[B]: the id of each counted row, `num_examples` elsewhere
  counted: jnp.ndarray  # bool[B]: rows the kernel counts
  dropped: jnp.ndarray  # i32[]: unmasked rows not counted (id out of range, or a repeat)


def resolve_mask(ids: jnp.ndarray, mask: jnp.ndarray | None) -> jnp.ndarray:
  """Returns `mask` as bool[B], all True when None."""
  if mask is None:
    return jnp.ones(ids.shape, dtype=bool)
  return jnp.asarray(mask, dtype=bool)


def select_rows(ids: jnp.ndarray, mask: jnp.ndarray | None, num_examples: int) -> Rows:
  """ids: int[B], mask: bool[B] | None -> the `Rows` an update of N = `num_examples` counts.

  A row counts when its mask is True, its id is in [0, N), and no earlier such row of the
  batch has the same id. Traced inside `debug_checks()` and run under
  `checkify.checkify(..., errors=checkify.user_checks)`, a batch with any dropped row fails
  with the count; otherwise the count only accumulates in state.
  """
  mask = resolve_mask(ids, mask)
  ids = jnp.asarray(ids).astype(jnp.int32)
  in_range = mask & (ids >= 0) & (ids < num_examples)
  counted = in_range & first_occurrence(ids, in_range)
  out_of_range = jnp.sum(mask & ~in_range, dtype=jnp.int32)
  repeated = jnp.sum(in_range & ~counted, dtype=jnp.int32)
  if _DEBUG_CHECKS.get():
    checkify.debug_check(out_of_range == 0,
                         f"{{n}} unmasked rows have ids outside [0, {num_examples}); pass ids "
                         "in that range or mask those rows", n=out_of_range)
    checkify.debug_check(repeated == 0, "{n} unmasked rows repeat an id already in this batch "
                         "(only the first counts); mask the repeats", n=repeated)
  return Rows(ids=jnp.where(counted, ids, jnp.int32(num_examples)), counted=counted,
              dropped=out_of_range + repeated)


def safe_ids(ids: jnp.ndarray, mask: jnp.ndarray, num_examples: int) -> jnp.ndarray:
  """ids: i32[B], mask: bool[B] -> i32[B] with the rows `select_rows` does not count set to
  `num_examples` (so scatters drop them)."""
  return select_rows(ids, mask, num_examples).ids


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

  Batches drawn with replacement (importance sampling) can hold an id twice; every kernel
  counts only the first unmasked row of an id (`select_rows`).
  """
  ids = jnp.asarray(ids).astype(jnp.int32)
  if ids.shape[0] == 0:
    return jnp.asarray(mask, bool)
  order = jnp.argsort(jnp.where(mask, ids, jnp.iinfo(jnp.int32).max), stable=True)
  sorted_ids = ids[order]
  sorted_mask = mask[order]
  repeat = jnp.concatenate([jnp.zeros((1,), bool), sorted_ids[1:] == sorted_ids[:-1]])
  first_sorted = sorted_mask & ~(repeat & jnp.concatenate([jnp.zeros((1,), bool),
                                                            sorted_mask[:-1]]))
  return jnp.zeros_like(mask).at[order].set(first_sorted)


def no_drops() -> jnp.ndarray:
  """The initial `dropped` counter of a kernel state: i32[] zero."""
  return jnp.zeros((), jnp.int32)
