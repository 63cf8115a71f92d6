"""ResNet-18, CIFAR variant (He et al. 2016; as in kuangliu/pytorch-cifar).

3x3 stem conv (64, stride 1, no max pool) -> BasicBlocks [2, 2, 2, 2] with widths
64, 128, 256, 512 and strides 1, 2, 2, 2 -> global average pool -> dropout ->
dense. 11,173,962 params for 10 classes. Convs before BatchNorm have no bias;
a shortcut is conv1x1 + BatchNorm when the shape changes.

PyTorch parity: 3x3 convs pad 1 on each side (XLA's SAME pads (0, 1) at stride 2,
which shifts the sampling grid); BatchNorm momentum 0.1 in PyTorch terms (Flax
momentum 0.9), eps 1e-5. Differences kept: Flax default inits (BatchNorm makes
the net insensitive to the kernel init scale) and Flax's biased variance in the
running average (PyTorch stores the unbiased one; negligible at B*H*W >= 128).
"""

from __future__ import annotations

from collections.abc import Sequence

from flax import nnx
import jax
import jax.numpy as jnp

from . import dropout as dropout_lib
from . import turnover as turnover_lib

_STAGE_BLOCKS = (2, 2, 2, 2)
_STAGE_STRIDES = (1, 2, 2, 2)


def _conv3x3(in_ch: int, out_ch: int, stride: int, dtype, rngs) -> nnx.Conv:
  return nnx.Conv(
      in_ch, out_ch, kernel_size=(3, 3), strides=stride,
      padding=((1, 1), (1, 1)), use_bias=False, dtype=dtype, rngs=rngs)


def _batch_norm(ch: int, dtype, rngs) -> nnx.BatchNorm:
  return nnx.BatchNorm(ch, momentum=0.9, epsilon=1e-5, dtype=dtype, rngs=rngs)


class BasicBlock(nnx.Module):
  """relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x))."""

  def __init__(self, in_ch: int, out_ch: int, stride: int, *, dtype, rngs):
    self.conv1 = _conv3x3(in_ch, out_ch, stride, dtype, rngs)
    self.bn1 = _batch_norm(out_ch, dtype, rngs)
    self.conv2 = _conv3x3(out_ch, out_ch, 1, dtype, rngs)
    self.bn2 = _batch_norm(out_ch, dtype, rngs)
    if stride != 1 or in_ch != out_ch:
      self.shortcut_conv = nnx.Conv(
          in_ch, out_ch, kernel_size=(1, 1), strides=stride, padding="VALID",
          use_bias=False, dtype=dtype, rngs=rngs)
      self.shortcut_bn = _batch_norm(out_ch, dtype, rngs)
    else:
      self.shortcut_conv = None
      self.shortcut_bn = None

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: [B, H, W, in_ch] -> [B, H / stride, W / stride, out_ch]."""
    use_running_average = not train
    y = nnx.relu(self.bn1(self.conv1(x), use_running_average))
    y = self.bn2(self.conv2(y), use_running_average)
    if self.shortcut_conv is not None:
      x = self.shortcut_bn(self.shortcut_conv(x), use_running_average)
    return nnx.relu(y + x)


class ResNet18(nnx.Module):
  """CIFAR ResNet-18.

  Attributes:
    stem_conv, stem_bn: the 3x3 stem.
    blocks: nnx.List of the 8 BasicBlocks in order.
    head: dense layer on the pooled features.
  """

  final_layer = "head"  # for the margin normalizers (norms.derive_layout)

  def __init__(
      self,
      example_shape: Sequence[int],
      num_classes: int,
      *,
      width: int = 64,
      dropout: float = 0.0,
      turnover_sites: Sequence[str] = (),
      turnover_rate: float = 0.5,
      dtype: jnp.dtype = jnp.float32,
      rngs: nnx.Rngs,
  ):
    """Builds the net.

    Args:
      example_shape: (H, W, C) of one image, e.g. (32, 32, 3).
      num_classes: number of logits C.
      width: stem and first-stage width; stages use width * (1, 2, 4, 8).
      dropout: rate applied to the pooled features before the head.
      turnover_sites: sites carrying ("stage_1".."stage_4": channels
        after each stage of two blocks; "features": the pooled features) turn-over dropout, or ("all",).
      turnover_rate: turn-over drop rate p (each unit is in m_i w.p. 1 - p).
      dtype: compute dtype; params and batch stats are float32.
      rngs: parameter initialization RNGs.
    """
    if len(example_shape) != 3:
      raise ValueError(
          f"resnet18 needs example_shape (H, W, C), got {tuple(example_shape)}")
    self.turnover_available = ("stage_1", "stage_2", "stage_3", "stage_4", "features")
    self.turnover_enabled, self.turnover_rate = turnover_lib.resolve_sites(
        self.turnover_available, turnover_sites, turnover_rate)
    self.dropout_rate = dropout_lib.check_rate(dropout)
    self.dtype = dtype
    self.stem_conv = _conv3x3(example_shape[-1], width, 1, dtype, rngs)
    self.stem_bn = _batch_norm(width, dtype, rngs)
    blocks = []
    in_ch = width
    for stage, (num_blocks, stride) in enumerate(
        zip(_STAGE_BLOCKS, _STAGE_STRIDES)):
      out_ch = width * 2**stage
      for i in range(num_blocks):
        blocks.append(BasicBlock(
            in_ch, out_ch, stride if i == 0 else 1, dtype=dtype, rngs=rngs))
        in_ch = out_ch
    self.blocks = nnx.List(blocks)
    self.head = nnx.Linear(in_ch, num_classes, dtype=dtype, rngs=rngs)

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
    x = nnx.relu(self.stem_bn(self.stem_conv(x), use_running_average=not train))
    for i, block in enumerate(self.blocks):
      x = block(x, train=train)
      if i % 2 == 1:  # the end of a stage
        x = turnover_lib.at_site(self, f"stage_{i // 2 + 1}", x, turnover)
    x = jnp.mean(x, axis=(1, 2))
    x = dropout_lib.dropout(x, self.dropout_rate, dropout_key)
    x = turnover_lib.at_site(self, "features", x, turnover)
    return self.head(x).astype(jnp.float32)
