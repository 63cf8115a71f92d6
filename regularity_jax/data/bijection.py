"""A counter-based permutation of [0, N): position -> example, one position at a time.

`permute(positions, keys, n)` maps each position p in [0, n) to the example at p of an epoch's
order, as a pure function of (keys, p): a keyed Feistel network on the b = ceil(log2 n) bits
of the next power of two M = 2**b >= n (an unbalanced one: the left half has floor(b / 2) bits,
the right ceil(b / 2), and the rounds alternate which half they change, each XORing it with a
hash of the other half and its round key), followed by cycle-walking (a value >= n goes through
the network again until it lands in [0, n)). Every Feistel round is invertible, so the network
permutes [0, M), and cycle-walking turns it into a permutation of [0, n) (Black and Rogaway
2002). Nothing of size n is built: a device, or a host, evaluates only the positions it holds
(its columns of the epoch plan), with memory proportional to those positions.

Cost per position: ROUNDS (8) half-rounds of about a dozen 32-bit integer operations (a
multiply-xorshift hash) per pass through the network, and M / n < 2 passes on average; the
vectorized loop (`lax.while_loop`, each pass over all P positions a device holds, then one
boolean all-reduce across devices) runs until its slowest position has landed, about
1 + log(P) / log(M / (M - n)) passes: ~6 for N = 10**6 (M = 2**20), ~21 when N is just above a
power of two. Memory: the positions themselves and a few arrays of their size, nothing of size
N (docs/scaling.md measures both).

The family is uniform-ish, not exactly uniform: 8 alternating half-rounds (4 full Luby-Rackoff
rounds) of a fixed hash keyed by 32-bit round keys reach a tiny share of the n! orders, and
are not a cryptographic pseudo-random permutation; for shuffling an epoch the orders are
indistinguishable from `jax.random.permutation`'s by any statistic that training sees.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

ROUNDS = 8  # alternating half-rounds, each with its own 32-bit key
MAX_EXAMPLES = 2**31 - 1  # positions are int32


def round_keys(key: jax.Array) -> jax.Array:
  """u32[ROUNDS] round keys of the network drawn from a PRNG key (e.g. the epoch's
  `fold_in(data_key, epoch)`)."""
  return jax.random.bits(key, (ROUNDS,), jnp.uint32)


def check_size(n: int) -> None:
  """ValueError unless 1 <= n <= MAX_EXAMPLES (positions are int32)."""
  if not 1 <= n <= MAX_EXAMPLES:
    raise ValueError(f"a bijection over [0, {n}) needs 1 <= n <= {MAX_EXAMPLES}")


def halves(n) -> tuple[jax.Array, jax.Array]:
  """u32 (left bits, right bits) of the network over [0, 2**ceil(log2 n)), for a static or a
  traced n (one compiled program then serves every n)."""
  bits = jnp.uint32(32) - jax.lax.clz(jnp.asarray(n, jnp.uint32) - jnp.uint32(1))
  return bits // 2, bits - bits // 2


def hash32(x: jax.Array) -> jax.Array:
  """A 32-bit integer mixer (xorshift-multiply, the 'lowbias32' constants); u32 -> u32."""
  x = x ^ (x >> 16)
  x = x * jnp.uint32(0x7FEB352D)
  x = x ^ (x >> 15)
  x = x * jnp.uint32(0x846CA68B)
  return x ^ (x >> 16)


def network(x: jax.Array, keys: jax.Array, n) -> jax.Array:
  """One pass of the Feistel network: a permutation of [0, 2**ceil(log2 n)); u32[...] -> u32."""
  left_bits, right_bits = halves(n)
  one = jnp.uint32(1)
  left_mask, right_mask = (one << left_bits) - one, (one << right_bits) - one
  left, right = x >> right_bits, x & right_mask
  for r in range(ROUNDS):
    if r % 2 == 0:
      left = left ^ (hash32(right ^ keys[r]) & left_mask)
    else:
      right = right ^ (hash32(left ^ keys[r]) & right_mask)
  return (left << right_bits) | right


def permute(positions: jax.Array, keys: jax.Array, n) -> jax.Array:
  """The examples at `positions` of the keyed permutation of [0, n).

  Args:
    positions: i32[...] positions in [0, n) (any shape; each evaluated on its own).
    keys: u32[ROUNDS] round keys (`round_keys`).
    n: the number of examples N, static or traced (u32/i32[]).

  Returns:
    i32[...] the example at each position; over positions 0..n-1, every example exactly once.
  """
  if isinstance(n, int):
    check_size(n)
  n_u = jnp.asarray(n, jnp.uint32)

  def walk(carry):  # one pass for every position still outside [0, n)
    y, outside = carry
    y = jnp.where(outside, network(y, keys, n), y)
    return y, y >= n_u

  x = positions.astype(jnp.uint32)
  x, _ = jax.lax.while_loop(lambda carry: jnp.any(carry[1]), walk,
                            (x, jnp.ones(x.shape, bool)))
  return x.astype(jnp.int32)
