"""Parts a config names: a built-in's short name, 'package.module:Attr' or 'path/to/file.py:Attr'.

  part = parts.resolve_model("mlp")                        # a built-in
  part = parts.resolve_model("my_pkg.nets:CNN")            # imported
  part = parts.resolve_model("nets/cnn.py:CNN", base_dir)  # executed; relative to base_dir
  part = parts.resolve_object(CNN)                         # a class object (a notebook cell's)

Built-ins and user parts go through this one door. A relative file path is taken from
`base_dir`, which `experiments.main` sets to the config file's folder, else from the current
directory; the error says which it was. A user part is identified by where it was found and the
sha256 of its source file (`ModelPart.record`, config.json's `model_source`). A class defined
in a notebook cell or an interactive session (`train_and_evaluate(config, workdir, model=CNN)`,
or `config.model = "__main__:CNN"`) has no file: it is named by its module and qualified name
and identified by the sha256 of its class source and that of its bases from the same module
(`class_source`, which reads the cells' code where `inspect.getsource` cannot); a class whose
source cannot be found is refused in one line.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.util
import inspect
import linecache
import os
import pathlib
import re
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
  if not sep or not module or not all(
      part.isidentifier() or part == "<locals>" for part in attr.split(".")):
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
  value = module
  for name in attr.split("."):  # a qualified name: Outer.Net
    if not hasattr(value, name):
      if field != "model":
        names = sorted(n for n, v in vars(module).items()
                       if callable(v) and not n.startswith("_") and getattr(
                           v, "__module__", None) == module.__name__)
        raise ConfigError(f"{where} has no {attr!r} (it defines: {', '.join(names) or 'nothing'}); "
                          f"set --config.{field}=...:<function>")
      names = sorted(n for n, v in vars(module).items()
                     if inspect.isclass(v) and not n.startswith("_"))
      raise ConfigError(f"{where} has no {attr!r} (its classes: {', '.join(names) or 'none'}); "
                        f"set --config.model=...:<Class>")
    value = getattr(value, name)
  return value


def _code_objects(klass):
  """The code objects of the functions defined in `klass`'s body."""
  for value in vars(klass).values():
    if isinstance(value, (staticmethod, classmethod)):
      value = value.__func__
    functions = ([value.fget, value.fset, value.fdel] if isinstance(value, property)
                 else [value])
    for fn in functions:
      fn = inspect.unwrap(fn) if callable(fn) else fn
      if inspect.isfunction(fn):
        yield fn.__code__


def _one_source(klass, hints: tuple[str, ...] = ()) -> str | None:
  """The source of one class (or function): inspect's, else the class block found above its
  methods' code in the lines Python or IPython keeps for them (`linecache`: a cell's code has
  no file, and before Python 3.13 `inspect.getsource` cannot find a class defined in one). A
  class without methods is looked for in the `hints` (its subclass's cells), then in the other
  code kept for no file on disk (cells), the last run first."""
  try:
    return inspect.getsource(klass)
  except (OSError, TypeError):
    pass
  if not inspect.isclass(klass):
    return None
  header = re.compile(rf"\s*class\s+{re.escape(klass.__name__)}\b")
  places = [(c.co_filename, c.co_firstlineno)
            for c in sorted(_code_objects(klass), key=lambda c: c.co_firstlineno)]
  if not places:
    cells = [name for name in reversed(list(linecache.cache))
             if name not in hints and not os.path.exists(name)]
    places = [(name, None) for name in (*hints, *cells)]
  for filename, line in places:
    lines = linecache.getlines(filename)
    for start in range(min(line or len(lines), len(lines)) - 1, -1, -1):
      if header.match(lines[start]):
        return "".join(inspect.getblock(lines[start:]))
  return None


def class_source(cls) -> str | None:
  """The source of `cls` and of each base class from the same module (a session's or a
  notebook's classes: the code the sha256 of `resolve_object` identifies); None if any of them
  cannot be found."""
  chunks = []
  hints = tuple(dict.fromkeys(c.co_filename for c in _code_objects(cls))) if inspect.isclass(
      cls) else ()
  for klass in (cls.__mro__ if inspect.isclass(cls) else (cls,)):
    if getattr(klass, "__module__", None) != cls.__module__:
      continue
    text = _one_source(klass, hints)
    if text is None:
      return None
    chunks.append(text)
  return "".join(chunks)


def _source_sha256(cls, spec: str) -> str:
  """The sha256 of the file that defines `cls`, else of its class source (`class_source`)."""
  try:
    inspect.getsource(cls)  # in that file (a __main__ class of a session is not in its file)
    source = inspect.getsourcefile(cls)
  except (OSError, TypeError):
    source = None
  if source and os.path.isfile(source):
    return _sha256(pathlib.Path(source))
  text = class_source(cls)
  if text is None:
    raise ConfigError(f"model {spec!r}: the source of {getattr(cls, '__qualname__', cls)!r} "
                      "cannot be found, so a resume could not check its code; define it in a "
                      "cell or file of its own with its methods (its class statement must be "
                      "readable), or put it in a file and name it 'path/to/file.py:Class'")
  return hashlib.sha256(text.encode()).hexdigest()


# Classes passed as objects (`resolve_object`), by (resolved, sha256): a session's classes are
# found by the object, not by their name, which a later cell may rebind.
_OBJECTS: dict[tuple[str, str], "ModelPart"] = {}


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
  if not _is_file(spec.rpartition(":")[0]):  # a module's class (a session's too): its source
    sha = _source_sha256(cls, spec)
  return ModelPart(cls, spec, False, resolved, sha)


def resolve_object(cls) -> ModelPart:
  """A model class passed as an object (e.g. defined in a notebook cell): named
  'module:QualifiedName' (`__main__:Net` for a cell's), identified by the sha256 of its file
  when it comes from one, else of its class source (`class_source`).

  Raises:
    ConfigError: a class whose source cannot be found, or one that breaks the contract.
  """
  if isinstance(cls, str):
    raise ConfigError(f"model={cls!r} is a string; pass it as config.model, and a class object "
                      "as train_and_evaluate(config, workdir, model=Class)")
  name = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", None)
  spec = f"{getattr(cls, '__module__', None) or '__main__'}:{name or type(cls).__name__}"
  try:
    models.contract.check_class(cls, spec)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  builtin = [n for n in models.MODELS if models.registry.constructor(n) is cls]
  if builtin:  # a built-in's class: the built-in, as if named
    return resolve_model(builtin[0])
  part = ModelPart(cls, spec, False, spec, _source_sha256(cls, spec))
  _OBJECTS[(part.resolved, part.sha256)] = part
  return part


def model_part(config, base_dir: str | os.PathLike | None = None) -> ModelPart:
  """The model of `config`: where its config.json recorded it (`model_source.resolved`) if it
  did for this `config.model` (a copy naming another model, e.g. RHO-LOSS's irreducible-loss
  model, resolves that one), else `config.model` resolved from `base_dir`. A class passed as
  an object (`resolve_object`) is that object."""
  source = config.get("model_source") or {}
  if source.get("resolved") and source.get("spec") == config.model:
    found = _OBJECTS.get((source["resolved"], source.get("sha256", "")))
    return found or resolve_model(source["resolved"], base_dir)
  return resolve_model(config.model, base_dir)


def use_object(config, cls) -> ModelPart:
  """Sets `config.model` to the name of the class object `cls` (`resolve_object`) and records
  its `model_source`."""
  part = resolve_object(cls)
  with config.unlocked():
    config.model = part.spec
    if not part.builtin:
      config.model_source = part.record()
  return part


def record_model_source(config, base_dir: str | os.PathLike | None = None) -> ModelPart:
  """Resolves `config.model` from `base_dir`; for a user part, records where it was found and
  the sha256 of its source in the config (`model_source`, so in config.json), which a resume
  must match (unless `allow_changed_model_code`)."""
  source = config.get("model_source") or {}
  found = _OBJECTS.get((source.get("resolved"), source.get("sha256")))
  if found is not None and source.get("spec") == config.model:
    return found  # recorded by `use_object`
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
