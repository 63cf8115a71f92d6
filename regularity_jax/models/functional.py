"""Functional view of a model: `split` once, then a pure jit-able `apply`.

This is the Flax NNX performance guide's functional training loop: the Python
graph traversal of `nnx.merge` / `nnx.split` runs only while `jax.jit` traces,
so a jitted step pays nothing for it per call. Params and model state are plain
nested dicts of arrays (no `nnx.State`, no `Variable` boxes), so optax, Orbax and
`jax.vmap` over a leading seed axis see ordinary pytrees.

Usage::

  graphdef, params, model_state = split(model)
  step = jax.jit(functools.partial(apply, graphdef), static_argnames="train")
  logits, model_state = step(params, model_state, x, train=True, key=key)

`graphdef` is a leafless (static) pytree, so it may also be passed straight to a
jitted function; `train` must be static (a Python bool).
"""

from __future__ import annotations

from typing import Any

from flax import nnx
import jax
import numpy as np

from .turnover import TurnOver

PyTree = Any


def split(model: nnx.Module) -> tuple[nnx.GraphDef, dict, dict]:
  """Splits a model into its static structure and two plain dicts of arrays.

  Args:
    model: an `nnx.Module`, e.g. from `create_model`.

  Returns:
    graphdef: static structure; hashable, a pytree with no leaves.
    params: nested dict of the `nnx.Param` values (float32 arrays).
    model_state: nested dict of every other variable (BatchNorm running
      `mean` / `var`); `{}` for models without BatchNorm.
    The arrays are the model's own buffers (no copy): after donating them to a
    jitted step, use `apply` rather than the original `model`.
  """
  graphdef, params, model_state = nnx.split(model, nnx.Param, ...)
  return graphdef, nnx.to_pure_dict(params), nnx.to_pure_dict(model_state)


def merge(graphdef: nnx.GraphDef, params: dict, model_state: dict) -> nnx.Module:
  """Inverse of `split`: rebuilds a stateful `nnx.Module` (e.g. to inspect it)."""
  return nnx.merge(graphdef, params, model_state)


def apply(
    graphdef: nnx.GraphDef,
    params: dict,
    model_state: dict,
    x: jax.Array,
    *,
    train: bool,
    key: jax.Array | None = None,
    turnover: TurnOver | None = None,
) -> tuple[jax.Array, dict]:
  """Runs the model as a pure function.

  Args:
    graphdef: from `split`.
    params: nested dict of arrays with the structure `split` returned.
    model_state: nested dict of batch stats with the structure `split` returned.
    x: f32[B, *example_shape].
    train: static Python bool; batch statistics + running-average update in
      BatchNorm and dropout (needs `key` if the model's rate is > 0).
    key: PRNG key for dropout, or None.
    turnover: turn-over dropout context (run key, example ids, mode) for models
      built with `turnover_sites`; None is the full network.

  Returns:
    logits: f32[B, C].
    new_model_state: updated batch stats when `train`, else `model_state`
      itself (unchanged).
  """
  model = nnx.merge(graphdef, params, model_state)
  logits = model(x, train=train, key=key, turnover=turnover)
  if not train:
    return logits, model_state
  _, _, new_model_state = nnx.split(model, nnx.Param, ...)
  return logits, nnx.to_pure_dict(new_model_state)


def count_params(params: PyTree) -> int:
  """Total number of scalar entries in `params` (a dict, `nnx.State` or module)."""
  if isinstance(params, nnx.Module):
    params = nnx.state(params, nnx.Param)
  return int(sum(np.prod(np.shape(leaf)) for leaf in jax.tree.leaves(params)))
