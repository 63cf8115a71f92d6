"""Toneva et al. (2019)'s MNIST network: the PyTorch MNIST example's CNN.

conv(10, 5x5) -> maxpool 2 -> ReLU -> conv(20, 5x5) -> Dropout2d -> maxpool 2 ->
ReLU -> flatten (320 for 28x28x1) -> dense 50 -> ReLU -> dropout -> dense C.
21,840 params for MNIST with 10 classes.

Init: PyTorch's defaults, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for kernels and
biases, because this net is a reproduction target (forgetting statistics depend on
training dynamics) and has no normalization to absorb a different init scale.
Flatten order is HWC rather than PyTorch's CHW, which only matters when porting
weights.
"""

from __future__ import annotations

from collections.abc import Sequence
import math

from flax import nnx
import jax
import jax.numpy as jnp

from . import dropout as dropout_lib
from . import turnover as turnover_lib

# PyTorch's kaiming_uniform(a=sqrt(5)) for weights is U(+-1/sqrt(fan_in)).
_torch_kernel_init = nnx.initializers.variance_scaling(
    1.0 / 3.0, "fan_in", "uniform")


def _torch_bias_init(fan_in: int):
  """Bias init U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as in PyTorch Linear/Conv."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def _conv5x5(in_ch: int, out_ch: int, dtype, rngs: nnx.Rngs) -> nnx.Conv:
  return nnx.Conv(
      in_ch, out_ch, kernel_size=(5, 5), padding="VALID", dtype=dtype,
      kernel_init=_torch_kernel_init, bias_init=_torch_bias_init(25 * in_ch),
      rngs=rngs)


def _linear(d_in: int, d_out: int, dtype, rngs: nnx.Rngs) -> nnx.Linear:
  return nnx.Linear(
      d_in, d_out, dtype=dtype, kernel_init=_torch_kernel_init,
      bias_init=_torch_bias_init(d_in), rngs=rngs)


def _pool(x: jax.Array) -> jax.Array:
  return nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))


class TonevaCNN(nnx.Module):
  """Two 5x5 convs + two dense layers with channel and unit dropout."""

  final_layer = "fc2"  # for the margin normalizers (norms.derive_layout)

  def __init__(
      self,
      example_shape: Sequence[int],
      num_classes: int,
      *,
      dropout: float = 0.5,
      turnover_sites: Sequence[str] = (),
      turnover_rate: float = 0.5,
      dtype: jnp.dtype = jnp.float32,
      rngs: nnx.Rngs,
  ):
    """Builds the net.

    Args:
      example_shape: (H, W, C) of one image, e.g. (28, 28, 1); H, W >= 16.
      num_classes: number of logits C.
      dropout: rate of both the channel dropout after conv2 and the dropout
        after dense 50 (PyTorch example: 0.5 for both).
      turnover_sites: sites carrying ("conv1", "conv2": channels after
        pooling; "fc1": the 50 units) turn-over dropout, or ("all",).
      turnover_rate: turn-over drop rate p (each unit is in m_i w.p. 1 - p).
      dtype: compute dtype; params are float32.
      rngs: parameter initialization RNGs.
    """
    if len(example_shape) != 3:
      raise ValueError(
          f"toneva_cnn needs example_shape (H, W, C), got {tuple(example_shape)}")
    height, width, channels = example_shape
    self.dropout_rate = dropout_lib.check_rate(dropout)
    self.dtype = dtype
    self.turnover_available = ("conv1", "conv2", "fc1")
    self.turnover_enabled, self.turnover_rate = turnover_lib.resolve_sites(
        self.turnover_available, turnover_sites, turnover_rate)
    self.conv1 = _conv5x5(channels, 10, dtype, rngs)
    self.conv2 = _conv5x5(10, 20, dtype, rngs)
    flat = 20 * math.prod(((d - 4) // 2 - 4) // 2 for d in (height, width))
    if flat <= 0:
      raise ValueError(
          f"toneva_cnn needs H, W >= 16, got example_shape {tuple(example_shape)}")
    self.fc1 = _linear(flat, 50, dtype, rngs)
    self.fc2 = _linear(50, num_classes, dtype, rngs)

  def __call__(
      self, x: jax.Array, *, train: bool = False, key: jax.Array | None = None,
      turnover: turnover_lib.TurnOver | None = None) -> jax.Array:
    """Computes logits.

    Args:
      x: f32[B, H, W, C] (NHWC).
      train: apply both dropouts (needs `key` when the rate is > 0).
      key: PRNG key for dropout.
      turnover: turn-over dropout context (example ids, mode) for the enabled
        `turnover_sites`; None behaves as mode "full".

    Returns:
      logits: f32[B, num_classes].
    """
    channel_key, unit_key = dropout_lib.dropout_keys(
        key, 2, active=train and self.dropout_rate > 0)
    x = x.astype(self.dtype)
    x = nnx.relu(_pool(self.conv1(x)))
    x = turnover_lib.at_site(self, "conv1", x, turnover)
    x = self.conv2(x)
    # Dropout2d: one mask value per (example, channel), shared over H and W.
    x = dropout_lib.dropout(
        x, self.dropout_rate, channel_key, broadcast_axes=(1, 2))
    x = nnx.relu(_pool(x))
    x = turnover_lib.at_site(self, "conv2", x, turnover)
    x = x.reshape(x.shape[0], -1)
    x = nnx.relu(self.fc1(x))
    x = dropout_lib.dropout(x, self.dropout_rate, unit_key)
    x = turnover_lib.at_site(self, "fc1", x, turnover)
    return self.fc2(x).astype(jnp.float32)
