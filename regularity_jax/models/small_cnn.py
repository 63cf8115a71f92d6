"""A small fast CNN for 28x28 or 32x32 images.

Per width: conv3x3 (no bias) -> BatchNorm -> ReLU -> maxpool 2; then global
average pool -> dropout -> dense. With the default widths (32, 64, 128) it has
about 95k params for 3-channel input, a fraction of ResNet-18's
compute. Flax default inits; BatchNorm with PyTorch's momentum (0.1, i.e. Flax
momentum 0.9) and eps 1e-5.
"""

from __future__ import annotations

from collections.abc import Sequence

from flax import nnx
import jax
import jax.numpy as jnp

from . import dropout as dropout_lib
from . import turnover as turnover_lib


class ConvBlock(nnx.Module):
  """conv3x3 SAME (no bias) -> BatchNorm -> ReLU -> maxpool 2x2."""

  def __init__(self, in_ch: int, out_ch: int, *, dtype, rngs: nnx.Rngs):
    self.conv = nnx.Conv(
        in_ch, out_ch, kernel_size=(3, 3), padding="SAME", use_bias=False,
        dtype=dtype, rngs=rngs)
    self.bn = nnx.BatchNorm(
        out_ch, momentum=0.9, epsilon=1e-5, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: [B, H, W, in_ch] -> [B, H // 2, W // 2, out_ch]."""
    x = nnx.relu(self.bn(self.conv(x), use_running_average=not train))
    return nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))


class SmallCNN(nnx.Module):
  """ConvBlocks of increasing width, global average pool, dense head."""

  final_layer = "head"  # for the margin normalizers (norms.derive_layout)

  def __init__(
      self,
      example_shape: Sequence[int],
      num_classes: int,
      *,
      widths: Sequence[int] = (32, 64, 128),
      dropout: float = 0.0,
      turnover_sites: Sequence[str] = (),
      turnover_rate: float = 0.5,
      dtype: jnp.dtype = jnp.float32,
      rngs: nnx.Rngs,
  ):
    """Builds the net.

    Args:
      example_shape: (H, W, C) of one image; H and W >= 2 ** len(widths).
      num_classes: number of logits C.
      widths: output channels of each ConvBlock (each halves H and W).
      dropout: rate applied to the pooled features before the head.
      turnover_sites: sites carrying ("block_<i>": channels after
        block i; "features": the pooled features) turn-over dropout, or ("all",).
      turnover_rate: turn-over drop rate p (each unit is in m_i w.p. 1 - p).
      dtype: compute dtype; params and batch stats are float32.
      rngs: parameter initialization RNGs.
    """
    if len(example_shape) != 3:
      raise ValueError(
          f"small_cnn needs example_shape (H, W, C), got {tuple(example_shape)}")
    if not widths:
      raise ValueError("small_cnn needs at least one width")
    self.dropout_rate = dropout_lib.check_rate(dropout)
    self.dtype = dtype
    self.turnover_available = (*(f"block_{i}" for i in range(len(widths))), "features")
    self.turnover_enabled, self.turnover_rate = turnover_lib.resolve_sites(
        self.turnover_available, turnover_sites, turnover_rate)
    channels = (example_shape[-1], *widths)
    self.blocks = nnx.List([
        ConvBlock(c_in, c_out, dtype=dtype, rngs=rngs)
        for c_in, c_out in zip(channels[:-1], channels[1:])
    ])
    self.head = nnx.Linear(widths[-1], num_classes, dtype=dtype, rngs=rngs)

  def __call__(
      self, x: jax.Array, *, train: bool = False, key: jax.Array | None = None,
      turnover: turnover_lib.TurnOver | None = None) -> jax.Array:
    """Computes logits.

    Args:
      x: f32[B, H, W, C] (NHWC).
      train: batch statistics in BatchNorm (and update the running averages);
        dropout when the rate is > 0 (needs `key`).
      key: PRNG key for dropout.
      turnover: turn-over dropout context (example ids, mode) for the enabled
        `turnover_sites`; None behaves as mode "full".

    Returns:
      logits: f32[B, num_classes].
    """
    (dropout_key,) = dropout_lib.dropout_keys(
        key, 1, active=train and self.dropout_rate > 0)
    x = x.astype(self.dtype)
    for i, block in enumerate(self.blocks):
      x = turnover_lib.at_site(self, f"block_{i}", block(x, train=train), turnover)
    x = jnp.mean(x, axis=(1, 2))
    x = dropout_lib.dropout(x, self.dropout_rate, dropout_key)
    x = turnover_lib.at_site(self, "features", x, turnover)
    return self.head(x).astype(jnp.float32)
