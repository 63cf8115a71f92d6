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

`graphdef` is a `ModelDef`, a leafless (static) pytree, so it may also be passed straight to
a jitted function; `train` must be static (a Python bool).

Any NNX model (docs/your_model.md, `contract`) runs through the same `apply`: the `ModelDef`
records which of train / key / rngs / turnover its `__call__` takes (the built-ins take train,
key and turnover and are called exactly so), puts it in train or eval mode with NNX's
`train()` / `eval()` when it takes no `train`, hands turn-over contexts to its `TurnOverSite`
layers, and keeps its own `nnx.Rngs` streams out of `model_state`: they are rebuilt on every
call from `key` (each stream's key is `fold_in(key, site_index(its path))`, its count 0), so
the state holds no keys and the same step key gives the same dropout masks on resume and on any
number of devices.
"""

from __future__ import annotations

from typing import Any

from flax import nnx
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from . import contract
from . import turnover as turnover_lib
from .turnover import TurnOver

PyTree = Any


@flax.struct.dataclass
class ModelDef:
  """The static part of a split model: a pytree with no leaves, hashable.

  Attributes:
    graphdef: `nnx.GraphDef` of the module (without its RNG streams).
    style: `contract.CallStyle`, the arguments its __call__ takes besides x.
    rng_streams: ((path, kind, shape), ...) of the model's own `nnx.Rngs` variables, kind
      "key" or "count": rebuilt from the step key on every call (empty for the built-ins).
  """
  graphdef: nnx.GraphDef = flax.struct.field(pytree_node=False)
  style: contract.CallStyle = flax.struct.field(pytree_node=False)
  rng_streams: tuple = flax.struct.field(pytree_node=False, default=())


def _rng_state(rng_streams: tuple, key: jax.Array | None) -> dict:
  """The nested pure dict of the model's RNG variables, seeded from `key` (None: a fixed key,
  for eval mode, where no stream is drawn from)."""
  base = key if key is not None else jax.random.key(0)
  if not jnp.issubdtype(base.dtype, jax.dtypes.prng_key):
    base = jax.random.wrap_key_data(base)
  out: dict = {}
  for path, kind, shape in rng_streams:
    if kind == "key":
      value = jax.random.fold_in(base, turnover_lib.site_index("/".join(map(str, path))))
      if shape:
        value = jax.random.split(value, shape)
    else:
      value = jnp.zeros(shape, jnp.uint32)
    node = out
    for part in path[:-1]:
      node = node.setdefault(part, {})
    node[path[-1]] = value
  return out


def split(model: nnx.Module) -> tuple[ModelDef, dict, dict]:
  """Splits a model into its static structure and two plain dicts of arrays.

  Args:
    model: an `nnx.Module`, e.g. from `create_model`, or any model of the contract
      (`contract`, docs/your_model.md).

  Returns:
    graphdef: `ModelDef`, the static structure; hashable, a pytree with no leaves.
    params: nested dict of the `nnx.Param` values (float32 arrays).
    model_state: nested dict of every other variable (BatchNorm running
      `mean` / `var`); `{}` for models without BatchNorm. RNG streams are not in it.
    The arrays are the model's own buffers (no copy): after donating them to a
    jitted step, use `apply` rather than the original `model`.

  Raises:
    contract.ContractError: a __call__ that needs arguments the engine does not give.
  """
  style = contract.call_style(model)
  if not jax.tree.leaves(nnx.state(model, nnx.RngState)):  # the built-ins: keys come per call
    graphdef, params, model_state = nnx.split(model, nnx.Param, ...)
    return ModelDef(graphdef, style), nnx.to_pure_dict(params), nnx.to_pure_dict(model_state)
  graphdef, params, rng_state, model_state = nnx.split(model, nnx.Param, nnx.RngState, ...)
  streams = tuple(
      (tuple(path), "key" if isinstance(variable, nnx.RngKey) else "count",
       tuple(np.shape(variable.get_value())))
      for path, variable in nnx.to_flat_state(rng_state))
  return (ModelDef(graphdef, style, streams), nnx.to_pure_dict(params),
          nnx.to_pure_dict(model_state))


def merge(graphdef: ModelDef, params: dict, model_state: dict,
          key: jax.Array | None = None) -> nnx.Module:
  """Inverse of `split`: rebuilds a stateful `nnx.Module` (e.g. to inspect it); its own RNG
  streams, if any, are seeded from `key`."""
  if not graphdef.rng_streams:
    return nnx.merge(graphdef.graphdef, params, model_state)
  return nnx.merge(graphdef.graphdef, params, _rng_state(graphdef.rng_streams, key), model_state)


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
    graphdef: the `ModelDef` from `split`.
    params: nested dict of arrays with the structure `split` returned.
    model_state: nested dict of batch stats with the structure `split` returned.
    x: f32[B, *example_shape].
    train: static Python bool; batch statistics + running-average update in
      BatchNorm and dropout (needs `key` if the model's rate is > 0).
    key: PRNG key for dropout, or None: passed as `key=` (or `rngs=nnx.Rngs(dropout=key)`)
      when the model's __call__ takes it; its own RNG streams are reseeded from it.
    turnover: turn-over dropout context (run key, example ids, mode) for models
      built with `turnover_sites` or holding `TurnOverSite` layers; None is the full network.

  Returns:
    logits: f32[B, C].
    new_model_state: updated batch stats when `train`, else `model_state`
      itself (unchanged).
  """
  model = merge(graphdef, params, model_state, key)
  style, kwargs = graphdef.style, {}
  if style.train:
    kwargs["train"] = train
  elif train:
    model.train()
  else:
    model.eval()
  if style.key:
    kwargs["key"] = key
  if style.rngs:
    kwargs["rngs"] = nnx.Rngs(dropout=key) if train and key is not None else None
  if style.turnover:
    kwargs["turnover"] = turnover
  with turnover_lib.active(turnover):
    logits = model(x, **kwargs)
  if not train:
    return logits, model_state
  if not graphdef.rng_streams:
    _, _, new_model_state = nnx.split(model, nnx.Param, ...)
  else:
    _, _, _, new_model_state = nnx.split(model, nnx.Param, nnx.RngState, ...)
  return logits, nnx.to_pure_dict(new_model_state)


def count_params(params: PyTree) -> int:
  """Total number of scalar entries in `params` (a dict, `nnx.State` or module)."""
  if isinstance(params, nnx.Module):
    params = nnx.state(params, nnx.Param)
  return int(sum(np.prod(np.shape(leaf)) for leaf in jax.tree.leaves(params)))
