"""Parts a config names: a built-in's short name, 'package.module:Attr' or 'path/to/file.py:Attr'.

  part = parts.resolve_model("mlp")                        # a built-in
  part = parts.resolve_model("my_pkg.nets:CNN")            # imported
  part = parts.resolve_model("nets/cnn.py:CNN", base_dir)  # executed; relative to base_dir

Built-ins and user parts go through this one door. A relative file path is taken from
`base_dir`, which `experiments.main` sets to the config file's folder, else from the current
directory; the error says which it was. A user part is identified by where it was found and the
sha256 of its source file (`ModelPart.record`, config.json's `model_source`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.util
import inspect
import os
import pathlib
import sys
from typing import Any, Callable

from regularity_jax import data
from regularity_jax import models
from regularity_jax.training.errors import ConfigError

CONTRACT = models.contract.CONTRACT


@dataclasses.dataclass(frozen=True)
class ModelPart:
  """A resolved `config.model`.

  Attributes:
    cls: the constructor (`models.contract.Constructor`).
    spec: as written in the config ("mlp", "pkg.mod:Net", "path/to/file.py:Net").
    builtin: True for the package's own models (`models.MODELS`).
    resolved: "pkg.mod:Net" or "/absolute/path/file.py:Net"; the short name for a built-in.
    sha256: hex sha256 of the source file that defines the class ('' for a built-in).
  """
  cls: Callable[..., Any]
  spec: str
  builtin: bool
  resolved: str
  sha256: str

  def record(self) -> dict[str, str]:
    """What config.json keeps of a user part (`model_source`)."""
    return {"spec": self.spec, "resolved": self.resolved, "sha256": self.sha256}


def check_model_spec(spec) -> None:
  """ConfigError unless `spec` has one of the three forms (nothing is imported)."""
  if not isinstance(spec, str) or not spec:
    raise ConfigError(f"model={spec!r} must be a string: a built-in ({', '.join(models.MODELS)}), "
                      "'package.module:Class' or 'path/to/file.py:Class'")
  if spec in models.MODELS:
    return
  module, sep, attr = spec.rpartition(":")
  if not sep or not module or not attr.isidentifier():
    raise ConfigError(f"unknown model {spec!r}; set --config.model to one of "
                      f"{', '.join(models.MODELS)}, or name your own as 'package.module:Class' "
                      f"or 'path/to/file.py:Class' ({CONTRACT})")


def _sha256(path: pathlib.Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.lru_cache(maxsize=None)
def _load_file(path: str, sha256: str):
  """Executes the file at `path` as a module once per content (a changed file loads anew)."""
  name = f"regularity_jax_user_{sha256[:16]}"
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module  # dataclasses and pickling look modules up by name
  try:
    spec.loader.exec_module(module)
  except BaseException:
    del sys.modules[name]
    raise
  return module


def _attr(module, attr: str, where: str, field: str = "model"):
  if not hasattr(module, attr):
    if field == "model":
      names = sorted(n for n, v in vars(module).items()
                     if inspect.isclass(v) and not n.startswith("_"))
      raise ConfigError(f"{where} has no {attr!r} (its classes: {', '.join(names) or 'none'}); "
                        f"set --config.model=...:<Class>")
    names = sorted(n for n, v in vars(module).items()
                   if callable(v) and not n.startswith("_") and getattr(
                       v, "__module__", None) == module.__name__)
    raise ConfigError(f"{where} has no {attr!r} (it defines: {', '.join(names) or 'nothing'}); "
                      f"set --config.{field}=...:<function>")
  return getattr(module, attr)


def _is_file(module_name: str) -> bool:
  return module_name.endswith(".py") or "/" in module_name or os.sep in module_name


def import_attr(spec: str, base_dir: str | os.PathLike | None = None, *, what: str = "model",
                field: str = "model") -> tuple[Any, str, str]:
  """(the attribute, its resolved "pkg.mod:Attr" or "/abs/file.py:Attr", the sha256 of its
  source file or '') of a 'package.module:Attr' or 'path/to/file.py:Attr' spec: the one door
  for every part a config names by import path (`what` and `field` word the messages)."""
  module_name, _, attr = spec.rpartition(":")
  if _is_file(module_name):
    base = pathlib.Path(base_dir) if base_dir else pathlib.Path.cwd()
    where = "the config file's folder" if base_dir else "the current directory"
    path = pathlib.Path(module_name).expanduser()
    path = (path if path.is_absolute() else base / path).resolve()
    if not path.is_file():
      raise ConfigError(f"{what} file {module_name!r} not found (looked for {path}: a relative path "
                        f"is taken from {where}); pass an existing path")
    sha = _sha256(path)
    try:
      module = _load_file(str(path), sha)
    except Exception as e:  # pylint: disable=broad-except
      raise ConfigError(f"{what} file {path} fails to import ({type(e).__name__}: "
                        f"{' '.join(str(e).split())[:160]}); fix that file") from None
    return _attr(module, attr, str(path), field), f"{path}:{attr}", sha
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    raise ConfigError(f"{what} module {module_name!r} cannot be imported ({e}); put its folder "
                      f"on PYTHONPATH or name the file: 'path/to/file.py:"
                      f"{'Class' if field == 'model' else 'fn'}'") from None
  obj = _attr(module, attr, module_name, field)
  try:
    source = inspect.getsourcefile(obj)
  except TypeError:
    source = None
  sha = _sha256(pathlib.Path(source)) if source and os.path.isfile(source) else ""
  return obj, f"{module_name}:{attr}", sha


def resolve_model(spec: str, base_dir: str | os.PathLike | None = None) -> ModelPart:
  """The model class `spec` names (the module docstring gives the forms).

  Raises:
    ConfigError: no such model, module, file or attribute, or one that is no NNX model class
      (a Linen module is named as such, with `nnx.bridge.ToNNX`).
  """
  check_model_spec(spec)
  if spec in models.MODELS:
    return ModelPart(models.registry.constructor(spec), spec, True, spec, "")
  cls, resolved, sha = import_attr(spec, base_dir)
  try:
    models.contract.check_class(cls, spec)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  return ModelPart(cls, spec, False, resolved, sha)


def model_part(config, base_dir: str | os.PathLike | None = None) -> ModelPart:
  """The model of `config`: where its config.json recorded it (`model_source.resolved`) if it
  did for this `config.model` (a copy naming another model, e.g. RHO-LOSS's irreducible-loss
  model, resolves that one), else `config.model` resolved from `base_dir`."""
  source = config.get("model_source") or {}
  if source.get("resolved") and source.get("spec") == config.model:
    return resolve_model(source["resolved"], base_dir)
  return resolve_model(config.model, base_dir)


def record_model_source(config, base_dir: str | os.PathLike | None = None) -> ModelPart:
  """Resolves `config.model` from `base_dir`; for a user part, records where it was found and
  the sha256 of its source in the config (`model_source`, so in config.json), which a resume
  must match."""
  part = resolve_model(config.model, base_dir)
  if not part.builtin:
    with config.unlocked():
      config.model_source = part.record()
  return part


def dataset_function(config, base_dir: str | os.PathLike | None = None) -> Callable[..., Any]:
  """The dataset function `config.dataset` names ('package.module:fn' or 'path/to/file.py:fn'),
  where config.json recorded it (`dataset_source.resolved`) if it did, else resolved from
  `base_dir` (the data contract: `data.sources`, docs/your_data.md)."""
  source = config.get("dataset_source") or {}
  spec = (source["resolved"] if source.get("resolved") and source.get("spec") == config.dataset
          else config.dataset)
  fn, _, _ = import_attr(spec, base_dir, what="dataset", field="dataset")
  if not callable(fn):
    raise ConfigError(f"dataset {config.dataset!r} names a {type(fn).__name__}, not a function; "
                      "name a function fn(split, **kwargs) (docs/your_data.md)")
  return fn


def record_dataset_source(config, base_dir: str | os.PathLike | None = None) -> None:
  """For a dataset function, records where it was found and the sha256 of its source in the
  config (`dataset_source`, so in config.json): a resume with other data code is refused."""
  try:
    kind = data.sources.kind(config.dataset)
  except data.DataError as e:
    raise ConfigError(str(e)) from None
  if kind != "function":
    return
  _, resolved, sha = import_attr(config.dataset, base_dir, what="dataset", field="dataset")
  with config.unlocked():
    config.dataset_source = {"spec": config.dataset, "resolved": resolved, "sha256": sha}
