"""Dropout with explicit keys (flax's `nnx.Dropout`): no RNG state lives inside a model.

Models take one `key` per call and split it into one key per dropout site with
`dropout_keys`, so the whole model state is params + batch stats and a train
step controls all randomness (e.g. `fold_in` of the step number).
"""

from __future__ import annotations

from collections.abc import Sequence

from flax import nnx
import jax


def check_rate(rate: float) -> float:
  """Returns `rate` as a float; raises ValueError unless 0 <= rate < 1."""
  rate = float(rate)
  if not 0.0 <= rate < 1.0:
    raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
  return rate


def dropout_keys(
    key: jax.Array | None, num: int, *, active: bool
) -> tuple[jax.Array | None, ...]:
  """Splits `key` into `num` keys, one per dropout site.

  Args:
    key: a PRNG key (typed or raw uint32[2]) or None.
    num: number of dropout sites in the model.
    active: whether dropout is applied in this call (train=True and rate > 0).

  Returns:
    `num` keys when `active`, else `num` Nones (no key is consumed).

  Raises:
    ValueError: `active` and `key` is None.
  """
  if not active:
    return (None,) * num
  if key is None:
    raise ValueError(
        "train=True with dropout > 0 needs an explicit PRNG key: "
        "model(x, train=True, key=key)")
  return tuple(jax.random.split(key, num))


def dropout(
    x: jax.Array,
    rate: float,
    key: jax.Array | None,
    *,
    broadcast_axes: Sequence[int] = (),
) -> jax.Array:
  """Inverted dropout (`nnx.Dropout` with an explicit key): zeroes entries with probability
  `rate` and scales the rest by 1 / (1 - rate).

  Args:
    x: any-dtype float array, e.g. f32[B, D] or f32[B, H, W, C].
    rate: drop probability in [0, 1).
    key: PRNG key; None means "no dropout" (eval mode or rate 0).
    broadcast_axes: axes that share one mask value. `(1, 2)` on NHWC input
      drops whole channels per example (PyTorch `Dropout2d`).

  Returns:
    Array with the shape and dtype of `x`.
  """
  if key is None or rate == 0.0:
    return x
  return nnx.Dropout(rate, broadcast_dims=tuple(broadcast_axes))(x, deterministic=False,
                                                                 rngs=key)
