"""Multi-layer perceptron on flattened inputs.

Kobayashi et al. (2020)'s turn-over dropout demo uses a bias-free MLP
784-768-768-768-10: `MLP((28, 28, 1), 10, hidden=(768, 768, 768), use_bias=False,
...)`. Flax default inits (LeCun-normal kernels, zero biases).
"""

from __future__ import annotations

from collections.abc import Sequence
import math

from flax import nnx
import jax
import jax.numpy as jnp

from . import dropout as dropout_lib
from . import turnover as turnover_lib


class MLP(nnx.Module):
  """Flatten -> [Dense -> ReLU -> dropout] * len(hidden) -> Dense.

  Attributes:
    hidden_layers: nnx.List of `nnx.Linear`, one per hidden width.
    head: final `nnx.Linear` to `num_classes` logits.
  """

  final_layer = "head"  # for the margin normalizers (norms.derive_layout)

  def __init__(
      self,
      example_shape: Sequence[int],
      num_classes: int,
      *,
      hidden: Sequence[int] = (256, 256),
      use_bias: bool = True,
      dropout: float = 0.0,
      turnover_sites: Sequence[str] = (),
      turnover_rate: float = 0.5,
      dtype: jnp.dtype = jnp.float32,
      rngs: nnx.Rngs,
  ):
    """Builds the MLP.

    Args:
      example_shape: shape of one example, any rank (e.g. (28, 28, 1) or
        (40, 1)); its size is the input width.
      num_classes: number of logits C.
      hidden: hidden layer widths; () gives a linear model.
      use_bias: biases on every layer (False: Kobayashi et al.'s bias-free MLP).
      dropout: rate applied after every hidden ReLU when training.
      turnover_sites: sites carrying turn-over dropout (see TURNOVER_SITES
        in the class docstring), or ("all",).
      turnover_rate: turn-over drop rate p (each unit is in m_i w.p. 1 - p).
      dtype: compute dtype; params are float32.
      rngs: parameter initialization RNGs.
    """
    self.dropout_rate = dropout_lib.check_rate(dropout)
    self.dtype = dtype
    # Turn-over sites: after each hidden ReLU (and its dropout), masks over units.
    self.turnover_available = tuple(f"hidden_{i}" for i in range(len(hidden)))
    self.turnover_enabled, self.turnover_rate = turnover_lib.resolve_sites(
        self.turnover_available, turnover_sites, turnover_rate)
    widths = (math.prod(example_shape), *hidden)
    self.hidden_layers = nnx.List([
        nnx.Linear(d_in, d_out, use_bias=use_bias, dtype=dtype, rngs=rngs)
        for d_in, d_out in zip(widths[:-1], widths[1:])
    ])
    self.head = nnx.Linear(
        widths[-1], num_classes, use_bias=use_bias, dtype=dtype, rngs=rngs)

  def __call__(
      self, x: jax.Array, *, train: bool = False, key: jax.Array | None = None,
      turnover: turnover_lib.TurnOver | None = None) -> jax.Array:
    """Computes logits.

    Args:
      x: f32[B, *example_shape].
      train: apply dropout (needs `key` when the rate is > 0).
      key: PRNG key for dropout.
      turnover: turn-over dropout context (example ids, mode) for the enabled
        `turnover_sites`; None behaves as mode "full".

    Returns:
      logits: f32[B, num_classes].
    """
    keys = dropout_lib.dropout_keys(
        key, max(len(self.hidden_layers), 1),
        active=train and self.dropout_rate > 0)
    x = x.reshape(x.shape[0], -1).astype(self.dtype)
    for i, (layer, layer_key) in enumerate(zip(self.hidden_layers, keys)):
      x = nnx.relu(layer(x))
      x = dropout_lib.dropout(x, self.dropout_rate, layer_key)
      x = turnover_lib.at_site(self, f"hidden_{i}", x, turnover)
    return self.head(x).astype(jnp.float32)
