"""The built-in models by name: `create_model("resnet18", num_classes=10, ...)`.

A config names a built-in by its short name here, or any NNX model by import path or file path
(`contract.resolve`, the same door; docs/your_model.md).
"""

from __future__ import annotations

from collections.abc import Sequence
import inspect
from typing import Any

from flax import nnx
import jax.numpy as jnp

from . import mlp
from . import resnet
from . import small_cnn
from . import toneva_cnn

_CONSTRUCTORS: dict[str, type[nnx.Module]] = {
    "mlp": mlp.MLP,
    "toneva_cnn": toneva_cnn.TonevaCNN,
    "small_cnn": small_cnn.SmallCNN,
    "resnet18": resnet.ResNet18,
}
# Arguments every constructor takes from create_model itself.
_COMMON_ARGS = ("self", "example_shape", "num_classes", "dtype", "rngs")

MODELS: tuple[str, ...] = tuple(_CONSTRUCTORS)


def constructor(name: str) -> type[nnx.Module]:
  """The class of built-in model `name`; ValueError naming the choices otherwise."""
  if name not in _CONSTRUCTORS:
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
  return _CONSTRUCTORS[name]


def model_kwargs(name: str) -> dict[str, Any]:
  """The model-specific kwargs of `name` with their defaults (the constructor's)."""
  signature = inspect.signature(constructor(name).__init__)
  return {
      arg: param.default for arg, param in signature.parameters.items()
      if arg not in _COMMON_ARGS
  }


def create_model(
    name: str,
    *,
    num_classes: int,
    example_shape: Sequence[int],
    rngs: nnx.Rngs,
    dtype: jnp.dtype = jnp.float32,
    **kwargs: Any,
) -> nnx.Module:
  """Builds a model by name.

  Every model is called as `model(x, *, train=False, key=None) -> logits` with
  x: f32[B, *example_shape] (NHWC for images) and logits: f32[B, num_classes].
  Dropout is active only with train=True and a rate > 0 and then needs `key`;
  BatchNorm uses batch statistics (and updates its running averages) iff
  train=True.

  Args:
    name: one of `MODELS`.
    num_classes: number of logits C.
    example_shape: shape of one example without the batch axis, e.g.
      (28, 28, 1), (32, 32, 3) or (40, 1) (mlp only).
    rngs: parameter initialization RNGs, e.g. `nnx.Rngs(seed)`.
    dtype: compute dtype (e.g. jnp.bfloat16); params and batch stats stay
      float32 and logits are always float32.
    **kwargs: model-specific options:
      mlp: hidden=(256, 256), use_bias=True, dropout=0.0
      toneva_cnn: dropout=0.5
      small_cnn: widths=(32, 64, 128), dropout=0.0
      resnet18: width=64, dropout=0.0
      every model: turnover_sites=(), turnover_rate=0.5 (turn-over dropout;
        sites: mlp hidden_<i>; toneva_cnn conv1, conv2, fc1; small_cnn
        block_<i>, features; resnet18 stage_1..stage_4, features; or "all")

  Returns:
    The initialized `nnx.Module`; `functional.split` it for a jitted loop.

  Raises:
    ValueError: unknown `name`, unknown kwarg, or an invalid value.
  """
  accepted = model_kwargs(name)
  unknown = sorted(set(kwargs) - set(accepted))
  if unknown:
    raise ValueError(
        f"model {name!r} got unknown kwarg(s) {', '.join(map(repr, unknown))}; "
        "it accepts "
        + ", ".join(f"{arg}={default!r}" for arg, default in accepted.items()))
  if num_classes < 1:
    raise ValueError(f"num_classes must be >= 1, got {num_classes}")
  return constructor(name)(
      tuple(example_shape), num_classes, dtype=dtype, rngs=rngs, **kwargs)
