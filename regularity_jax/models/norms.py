"""Network-norm normalizers for normalized logit margins (Banburski et al. 2021, arXiv 2107.10199).

A leaf: imports only jax.numpy.

  norm = network_norm(params, model_state, kind="frobenius_product", model="small_cnn")
  nm = normalized_margin(metrics.logit_margin(logits, labels), norm)

Normalizers (`NORMALIZERS`):

  frobenius_product  prod_k ||W_k||_F over every conv/dense kernel W_k, after folding eval-mode
                     batch norm into the conv before it (the DEFAULT, see below).
  last_layer         ||W_head||_F, the Frobenius norm of the final dense kernel only.
  none               1 (raw logit margins).

Why `frobenius_product` is the default. The theory Banburski et al. build on ("Theory III",
Banburski et al. 2019, arXiv 1903.04991) maximizes the margin under a unit-norm constraint on
the weight matrix of each layer: for a homogeneous network f(W; x) = rho * f(V; x) with
rho = prod_k ||W_k||_F and V_k = W_k / ||W_k||_F, so the normalized margin is the margin of
f(V; x), the logit margin divided by rho, and gradient descent on exponential-type losses
(locally) maximizes it. Only the abstracts were available to us, not the full texts. It is what
makes the margin comparable across training time and across runs: for a
bias-free ReLU network (ReLU, max/average pooling and linear maps are positively homogeneous of
degree 1), scaling layer k's kernel by c_k > 0 scales every logit by prod_k c_k and so does rho,
leaving the normalized margin unchanged (tested). `last_layer` is invariant to the head's
scale only; `none` to nothing.

Biases are left out of every norm. A network with biases is not homogeneous in its kernels
(f(c W, b; x) != c f(W, b; x)), so no choice of bias norm restores exact invariance; the
homogeneity argument of Banburski et al. holds for bias-free ReLU networks, and we follow their
definition (layer weight matrices only). For mlp(use_bias=True) and toneva_cnn the normalized
margin is therefore an approximation of the theory's quantity, as it is for small_cnn and
resnet18 (folded BN shifts and head biases). ResNet-18's skip connections
make it inhomogeneous too (scaling a residual branch does not scale the identity path), so for
resnet18 the product is a convention, not an invariant.

Batch norm is folded, eval mode. Training-mode BN makes the net invariant to each conv's scale,
so the raw conv norm carries no information; what the eval-mode network computes with is the
folded kernel

  W'[..., o] = W[..., o] * gamma[o] / sqrt(var[o] + eps)

(per output channel o, the last kernel axis) and a folded shift beta - mean * gamma /
sqrt(var + eps), which is a bias and so does not enter the norm. The product of folded-kernel
norms is the normalizer of the bias-free part of the eval-mode function, whose margins are
what gets measured. Rescaling a conv kernel together with its running statistics (an eval-mode
no-op) leaves it unchanged (tested).

Which BN folds into which conv is read from the param paths: a BN at `.../NAME` (params
{scale, bias}, model_state {mean, var}) folds into the kernel at `.../NAME'`, where NAME' is
NAME with "bn" replaced by "conv" (small_cnn: blocks/i/bn -> blocks/i/conv; resnet18:
stem_bn -> stem_conv, bn1 -> conv1, bn2 -> conv2, shortcut_bn -> shortcut_conv). Every leaf
named `kernel` is a layer. The per-model table `_LAYOUTS` gives the rest: the final dense
layer's path and the BN epsilon (which is not stored in the params).

Any other model (docs/your_model.md): `derive_layout(model, num_classes)` reads the same from
its layers where they leave no doubt: the final layer is the one dense kernel [D, num_classes];
the epsilon is the one all its `nnx.BatchNorm`s share; each BN folds into the kernel the naming
rule above gives, else the sibling kernel with the same trailing number (conv1 <- batch_norm1),
else the only sibling kernel with as many outputs. What it cannot tell is declared on the model
class: `final_layer = "linear2"`, `batch_norm_folds = {"bn_path": "conv_path"}` ("/"-joined
param paths); without either, the normalizer is refused in one line naming what to declare.
The built-ins declare their final layer, so a hidden width equal to num_classes stays clear.

Range. rho multiplies one factor per layer (21 for resnet18: rho ~ 1.2e23, log rho ~ 53, at
init with width 64, against float32's 3.4e38, log 88.7), so it is summed in logs by
`log_network_norm`; `network_norm` is its exp and becomes inf if a trained net outgrows
float32, which `normalized_margin` would turn into zeros. Watch log rho for deep nets.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from flax import nnx
import jax.numpy as jnp
import numpy as np

NORMALIZERS: tuple[str, ...] = ("frobenius_product", "last_layer", "none")
DEFAULT_NORMALIZER = "frobenius_product"


class Layout(NamedTuple):
  """What the normalizers need of a model beyond its params."""
  last_layer: tuple[str, ...]   # path of the final dense layer in params
  bn_epsilon: float | None      # BatchNorm epsilon; None: the model has no BatchNorm
  # ((bn path, kernel path, epsilon), ...) of a derived layout; None: the bn -> conv naming rule
  folds: tuple | None = None


_Layout = Layout


_LAYOUTS: dict[str, _Layout] = {
    "mlp": _Layout(last_layer=("head",), bn_epsilon=None),
    "toneva_cnn": _Layout(last_layer=("fc2",), bn_epsilon=None),
    "small_cnn": _Layout(last_layer=("head",), bn_epsilon=1e-5),
    "resnet18": _Layout(last_layer=("head",), bn_epsilon=1e-5),
}


def _layout(model: str | Layout) -> Layout:
  if isinstance(model, Layout):
    return model
  if model not in _LAYOUTS:
    raise ValueError(f"unknown model {model!r}; choose one of {', '.join(_LAYOUTS)}")
  return _LAYOUTS[model]


def _walk(tree: Any, prefix: tuple = ()):
  """Yields (path, subdict) for every dict in a nested dict, depth first."""
  if isinstance(tree, dict):
    yield prefix, tree
    for key, value in tree.items():
      yield from _walk(value, prefix + (key,))


def _lookup(tree: dict, path: tuple) -> Any:
  for key in path:
    if not isinstance(tree, dict) or key not in tree:
      return None
    tree = tree[key]
  return tree


def _path_name(path: tuple) -> str:
  return "/".join(str(key) for key in path)


def fold_batch_norm(
    kernel: jnp.ndarray, scale: jnp.ndarray, bias: jnp.ndarray, mean: jnp.ndarray,
    var: jnp.ndarray, epsilon: float,
) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Folds eval-mode batch norm into the bias-free conv/dense layer before it.

  bn(x @ W) = x @ W' + b' with W' = W * g, b' = bias - mean * g, g = scale / sqrt(var + eps).

  Args:
    kernel: f32[..., O], output channels on the last axis (Flax conv [kh, kw, I, O] or
      dense [I, O]).
    scale, bias, mean, var: f32[O], the BN's gamma, beta and running statistics.
    epsilon: the BN's epsilon.

  Returns:
    (folded kernel f32[..., O], folded bias f32[O]).
  """
  gain = scale / jnp.sqrt(var + epsilon)
  return kernel * gain, bias - mean * gain


def folded_kernels(params: dict, model_state: dict, *, model: str | Layout) -> dict[str, jnp.ndarray]:
  """Every conv/dense kernel of the network, with eval-mode BN folded in.

  Args:
    params, model_state: as returned by `models.split`.
    model: registry name (one of `models.MODELS`) or a `Layout` (`derive_layout`).

  Returns:
    {"/"-joined param path of the kernel's layer: f32 kernel}, in traversal order.

  Raises:
    ValueError: unknown model, or a BN that does not follow the bn -> conv naming convention.
  """
  layout = _layout(model)
  kernels = {
      path: sub["kernel"] for path, sub in _walk(params)
      if "kernel" in sub and not isinstance(sub["kernel"], dict)
  }
  folded = dict(kernels)
  if layout.folds is not None:
    for bn_path, conv_path, epsilon in layout.folds:
      sub, stats = _lookup(params, bn_path), _lookup(model_state, bn_path)
      folded[conv_path], _ = fold_batch_norm(kernels[conv_path], sub["scale"], sub["bias"],
                                             stats["mean"], stats["var"], epsilon)
    return {_path_name(path): kernel for path, kernel in folded.items()}
  for path, sub in _walk(params):
    if not (path and set(sub) == {"scale", "bias"}):
      continue
    stats = _lookup(model_state, path)
    if not isinstance(stats, dict) or not {"mean", "var"} <= set(stats):
      continue  # a scale/bias pair without running statistics is not a BatchNorm
    conv_path = path[:-1] + (str(path[-1]).replace("bn", "conv"),)
    if layout.bn_epsilon is None or conv_path == path or conv_path not in kernels:
      raise ValueError(
          f"{model}: batch norm at {_path_name(path)!r} has no conv at "
          f"{_path_name(conv_path)!r} to fold into (see the norms module docstring)")
    folded[conv_path], _ = fold_batch_norm(
        kernels[conv_path], sub["scale"], sub["bias"], stats["mean"], stats["var"],
        layout.bn_epsilon)
  return {_path_name(path): kernel for path, kernel in folded.items()}


def _frobenius(kernel: jnp.ndarray) -> jnp.ndarray:
  return jnp.sqrt(jnp.sum(jnp.square(kernel.astype(jnp.float32))))


def log_network_norm(params: dict, model_state: dict, *, kind, model: str | Layout) -> jnp.ndarray:
  """log of `network_norm`, computed as a sum of per-layer logs (no float32 overflow).

  Same arguments and errors as `network_norm`; returns f32[].
  """
  if callable(kind):  # a user normalizer (docs/parts.md; resolved by the margins evaluator)
    return jnp.asarray(kind(params, model_state), jnp.float32)
  if kind not in NORMALIZERS:
    raise ValueError(f"unknown normalizer {kind!r}; choose one of {', '.join(NORMALIZERS)}")
  if kind == "none":
    _layout(model)
    return jnp.zeros((), jnp.float32)
  if kind == "last_layer":
    path = _layout(model).last_layer
    head = _lookup(params, path)
    if not isinstance(head, dict) or "kernel" not in head:
      raise ValueError(f"{model}: no dense kernel at {_path_name(path)!r}")
    return jnp.log(_frobenius(head["kernel"]))
  kernels = folded_kernels(params, model_state, model=model)
  return jnp.sum(jnp.stack([jnp.log(_frobenius(k)) for k in kernels.values()]))


def network_norm(params: dict, model_state: dict, *, kind: str = DEFAULT_NORMALIZER,
                 model: str | Layout) -> jnp.ndarray:
  """The scalar a logit margin is divided by to get a normalized margin.

  Pure and jit-able (close over `kind` and `model`, which are Python strings).

  Args:
    params: nested dict of f32 arrays from `models.split`.
    model_state: nested dict of BN running statistics from `models.split` ({} without BN).
    kind: one of `NORMALIZERS` (see the module docstring), default `DEFAULT_NORMALIZER`;
      or a user normalizer `log_norm(params, model_state) -> f32[]` (jit-able), the log
      of the network norm (docs/parts.md).
    model: registry name of the network (one of `models.MODELS`) or its `Layout`
      (`derive_layout`).

  Returns:
    f32[] > 0 (inf if the product leaves float32's range; see `log_network_norm`).

  Raises:
    ValueError: unknown `kind` (the message names the choices) or unknown `model`.
  """
  return jnp.exp(log_network_norm(params, model_state, kind=kind, model=model))


def normalized_margin(logit_margins: jnp.ndarray, norm: jnp.ndarray) -> jnp.ndarray:
  """logit_margins: f32[N], norm: f32[] from `network_norm` -> f32[N] logit_margins / norm."""
  return logit_margins.astype(jnp.float32) / jnp.asarray(norm, jnp.float32)


class LayoutError(ValueError):
  """A model whose layout cannot be derived; the message names what to declare."""


def _kernels(params: dict) -> dict[tuple, tuple[int, ...]]:
  return {path: tuple(np.shape(sub["kernel"])) for path, sub in _walk(params)
          if "kernel" in sub and not isinstance(sub["kernel"], dict)}


def _parse(path: str, params: dict, what: str, name: str) -> tuple:
  """A declared "/"-joined path as the params' key tuple (list indices are ints)."""
  found = {_path_name(p): p for p, _ in _walk(params)}
  if path not in found:
    raise LayoutError(f"{name}.{what} names {path!r}, which is not a layer of the model's params "
                      f"(layers: {', '.join(sorted(_path_name(p) for p in _kernels(params)))})")
  return found[path]


def _trailing_number(name: str) -> str | None:
  name = str(name)
  digits = name[len(name.rstrip("0123456789")):]
  return digits or None


def _fold_target(path: tuple, features: int, kernels: dict) -> tuple | None:
  """The kernel a BN at `path` folds into, where the layers leave no doubt; else None."""
  renamed = path[:-1] + (str(path[-1]).replace("bn", "conv"),)
  if renamed != path and renamed in kernels:
    return renamed
  siblings = [k for k, shape in kernels.items()
              if k[:-1] == path[:-1] and shape and shape[-1] == features]
  number = _trailing_number(path[-1])
  numbered = [k for k in siblings if number is not None and _trailing_number(k[-1]) == number]
  if len(numbered) == 1:
    return numbered[0]
  return siblings[0] if len(siblings) == 1 else None


def derive_layout(model, params: dict, num_classes: int, *, declared: bool = True) -> Layout:
  """The `Layout` of any NNX model (the module docstring says how), from its layers and, with
  `declared`, the class attributes `final_layer` and `batch_norm_folds`.

  Args:
    model: the `nnx.Module` (its BatchNorm layers give the epsilons).
    params: its params as a nested dict (`functional.split`).
    num_classes: C, the width of the logits.

  Raises:
    LayoutError: one line naming the class attribute to declare.
  """
  name = type(model).__name__
  kernels = _kernels(params)
  final = getattr(type(model), "final_layer", None) if declared else None
  if final is not None:
    last = _parse(final, params, "final_layer", name)
  else:
    heads = [p for p, shape in kernels.items() if len(shape) == 2 and shape[-1] == num_classes]
    if len(heads) != 1:
      which = (f"{len(heads)} dense kernels [D, {num_classes}] ("
               f"{', '.join(_path_name(p) for p in heads)})" if heads
               else f"no dense kernel [D, {num_classes}]")
      raise LayoutError(f"{name} has {which}, so its final layer is not clear; declare it on the "
                        f"class, e.g. final_layer = \"head\" (docs/your_model.md), or set "
                        "--config.margins.normalizer=none")
    last = heads[0]
  declared_folds = dict(getattr(type(model), "batch_norm_folds", None) or {}) if declared else {}
  folds, epsilons = [], set()
  for path, node in nnx.iter_graph(model):
    if not isinstance(node, nnx.BatchNorm):
      continue
    path = tuple(path)
    epsilons.add(float(node.epsilon))
    if _path_name(path) in declared_folds:
      target = _parse(declared_folds[_path_name(path)], params, "batch_norm_folds", name)
    else:
      target = _fold_target(path, int(node.num_features), kernels)
    if target is None or target not in kernels:
      raise LayoutError(f"{name}: which layer the batch norm at {_path_name(path)!r} follows is "
                        "not clear; declare it on the class, e.g. batch_norm_folds = "
                        f"{{\"{_path_name(path)}\": \"conv\"}} (docs/your_model.md), or set "
                        "--config.margins.normalizer=none")
    folds.append((path, target, float(node.epsilon)))
  epsilon = epsilons.pop() if len(epsilons) == 1 else None
  return Layout(last_layer=last, bn_epsilon=epsilon, folds=tuple(folds))
