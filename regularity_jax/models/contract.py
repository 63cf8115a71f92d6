"""The model contract: what any Flax NNX model needs to go through the engine.

A leaf: imports only flax, jax, inspect and typing. docs/your_model.md is the user's page; a
config names a model by a built-in's short name, 'package.module:Class' or
'path/to/file.py:Class' (resolved by `regularity_jax.training.parts`).

A model is a class (an `nnx.Module` subclass, or any callable returning one) with

  __init__(self, *, rngs: nnx.Rngs, [num_classes], [example_shape], [dtype], **model_kwargs)
  __call__(self, x: f32[B, *example_shape], [train], [key], [rngs], [turnover]) -> f32[B, C]

The bracketed arguments are passed only when the signature names them (or takes **kwargs):
`num_classes`, `example_shape` and `dtype` (the compute dtype; a bfloat16 config is refused for
a model that takes no `dtype`); `train` (a Python bool: else the engine calls NNX's
`model.train()` / `model.eval()`, which set `deterministic` and `use_running_average` of every
Dropout and BatchNorm), `key` (a PRNG key for dropout, a fresh one every step), `rngs` (the
same key as `nnx.Rngs(dropout=key)`) and `turnover` (the built-ins' turn-over context). A
model's own `nnx.Rngs` streams (e.g. `nnx.Dropout(rate, rngs=rngs)`) are reseeded from that
step key before every call (`functional.apply`), so a resumed run and a run on 1 or 4 devices
draw the same dropout masks. The Flax NNX MNIST tutorial's CNN (`__init__(self, *, rngs)`,
`model(x)`) fits unchanged.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple, Protocol, runtime_checkable

from flax import nnx
import jax



@runtime_checkable
class Classifier(Protocol):
  """What the engine calls: logits f32[B, C] of x f32[B, *example_shape] (mode and keys as the
  module docstring says). The constructor is `Constructor`."""

  def __call__(self, x: jax.Array, /, **kwargs: Any) -> jax.Array:
    ...


class Constructor(Protocol):
  """`cls(*, rngs, [num_classes], [example_shape], [dtype], **model_kwargs) -> Classifier`."""

  def __call__(self, *, rngs: nnx.Rngs, **kwargs: Any) -> Classifier:
    ...


# What the engine may pass to a constructor, and to __call__ besides x.
ENGINE_INIT_ARGS = ("num_classes", "example_shape", "dtype")
CALL_ARGS = ("train", "key", "rngs", "turnover")
CONTRACT = "docs/your_model.md"


class ContractError(ValueError):
  """A model that does not fit the contract; the message is one line naming what to change."""


def check_class(cls, name: str) -> None:
  """ContractError unless `cls` builds NNX models (a Linen module gets a line naming the
  bridge)."""
  try:
    from flax import linen  # pylint: disable=g-import-not-at-top
    linen_module = linen.Module
  except ImportError:  # pragma: no cover - linen ships with flax
    linen_module = ()
  if inspect.isclass(cls) and linen_module and issubclass(cls, linen_module):
    raise ContractError(f"model {name!r} is a Flax Linen module; the engine takes NNX models: "
                        f"wrap it, e.g. nnx.bridge.ToNNX({cls.__name__}(...), rngs=rngs) inside an "
                        f"nnx.Module and call nnx.bridge.lazy_init once ({CONTRACT})")
  if isinstance(cls, nnx.Module):
    raise ContractError(f"model {name!r} is a model instance; name its class, which the engine "
                        f"builds once per seed with rngs=nnx.Rngs(...) ({CONTRACT})")
  if not callable(cls):
    raise ContractError(f"model {name!r} is a {type(cls).__name__}, not a model class "
                        f"({CONTRACT})")


def _parameters(fn) -> tuple[dict[str, inspect.Parameter], bool]:
  """(named parameters, takes **kwargs) of `fn`."""
  try:
    signature = inspect.signature(fn)
  except (TypeError, ValueError):
    return {}, True
  params = dict(signature.parameters)
  var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
  return ({n: p for n, p in params.items()
           if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}, var_kw)


def constructor_kwargs(cls, *, num_classes: int, example_shape, dtype, rngs: nnx.Rngs,
                       model_kwargs: dict, name: str) -> dict[str, Any]:
  """The keyword arguments the engine passes to a user model's constructor.

  Raises:
    ContractError: no `rngs`, a required argument the engine cannot give, a model kwarg the
      constructor does not take, or a non-float32 `dtype` for a constructor without `dtype`.
  """
  params, var_kw = _parameters(cls.__init__ if inspect.isclass(cls) else cls)
  params.pop("self", None)
  if "rngs" not in params and not var_kw:
    raise ContractError(f"model {name!r}: its constructor takes no `rngs`; write "
                        f"__init__(self, *, rngs: nnx.Rngs, ...) ({CONTRACT})")
  kwargs = {"rngs": rngs}
  engine = {"num_classes": int(num_classes), "example_shape": tuple(example_shape),
            "dtype": dtype}
  for arg, value in engine.items():
    if arg in params:
      kwargs[arg] = value
  if "dtype" not in kwargs and jax.numpy.dtype(dtype) != jax.numpy.float32:
    raise ContractError(f"model {name!r} takes no `dtype`, so dtype={jax.numpy.dtype(dtype).name} "
                        "cannot reach it; set --config.dtype=float32 or add a `dtype` argument")
  unknown = sorted(k for k in model_kwargs if k not in params) if not var_kw else []
  if unknown:
    raise ContractError(f"model {name!r} got model_kwargs {', '.join(map(repr, unknown))} its "
                        f"constructor does not take (it takes {', '.join(sorted(params)) or 'none'})")
  clash = sorted(set(model_kwargs) & set(kwargs))
  if clash:
    raise ContractError(f"model_kwargs {', '.join(map(repr, clash))} are passed by the engine "
                        "itself; remove them from --config.model_kwargs")
  kwargs.update(model_kwargs)
  missing = [n for n, p in params.items() if p.default is p.empty and n not in kwargs]
  if missing:
    raise ContractError(f"model {name!r}: its constructor needs {', '.join(map(repr, missing))}, "
                        "which the engine does not give (it passes rngs, and num_classes, "
                        "example_shape, dtype when named); give them defaults or set "
                        f"--config.model_kwargs.<name> ({CONTRACT})")
  return kwargs


class CallStyle(NamedTuple):
  """Which of `CALL_ARGS` a model's `__call__` takes (static; part of `functional.ModelDef`)."""
  train: bool = False
  key: bool = False
  rngs: bool = False
  turnover: bool = False


def call_style(model, name: str = "") -> CallStyle:
  """The `CallStyle` of `model`'s __call__; ContractError if it needs an argument besides x
  that the engine does not give."""
  params, var_kw = _parameters(type(model).__call__)
  params.pop("self", None)
  names = list(params)
  if not names and not var_kw:
    raise ContractError(f"model {name or type(model).__name__!r}: its __call__ takes no input; "
                        f"write __call__(self, x) ({CONTRACT})")
  rest = {n: p for n, p in list(params.items())[1:]}
  missing = [n for n, p in rest.items() if p.default is p.empty and n not in CALL_ARGS]
  if missing:
    raise ContractError(f"model {name or type(model).__name__!r}: its __call__ needs "
                        f"{', '.join(map(repr, missing))}, which the engine does not give (it "
                        f"calls model(x) and passes {', '.join(CALL_ARGS)} when named); give "
                        f"them defaults ({CONTRACT})")
  return CallStyle(**{arg: arg in rest for arg in CALL_ARGS})
