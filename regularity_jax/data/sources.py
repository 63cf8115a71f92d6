"""Any dataset by the one name a config gives it: a catalog name, a path, a function, a TFDS name.

  kind("mnist")                    -> "catalog"   the six names of `catalog` (known classes)
  kind("/data/digits.npz")         -> "path"      an .npz, or an image folder (or its .tar.gz)
  kind("my_pkg.data:load")         -> "function"  'package.module:fn' or 'path/to/file.py:fn'
  kind("beans")                    -> "tfds"      any TFDS image-classification builder

A path or a TFDS name takes its classes, class names and example shape from the data: an .npz
from its labels (classes 0..max label) and optional `class_names` array, an image folder from
its class folders (sorted; numeric order when all are numbers) and its first image (grayscale
or RGB), a TFDS builder from its info (`features["label"].names`, `features["image"].shape`;
images of varying size are refused unless `tfds.image_size` = (H, W) resizes them as they are
read, `tfds_source.resize`; or save them resized as an .npz).

The dataset function contract (docs/your_data.md): `fn(split, **kwargs)` is called with
split "train" and "test" and returns either

  * a mapping {"inputs": [N, ...] (or "images"), "labels": int[N], "class_names": [C] str,
    optional "ids": int[N] (distinct, >= 0; default 0..N-1), optional "draw": "image" |
    "line" | "text", optional "vocabulary": [V] str (text: token id -> word)}; inputs are
    uint8 pixels, floats, or (draw="text") integer token ids, which are not normalized; or
  * a random-access source: `__len__()` and `read(positions: int[P]) -> {"image": [P, ...],
    "label": int[P], "id": int[P]}` (the interface `streaming` reads), with a `class_names`
    attribute (and optionally `draw`, `vocabulary`). Its labels are read up front; its inputs
    row by row as subsets and the identity's sample need them.

Resolving 'module:fn' to the function is the engine's (`training.parts`, the same door as
models); this module takes the function.
"""

from __future__ import annotations

import difflib
import os
import pathlib
import re
from typing import Any, Callable

import numpy as np

from regularity_jax.data import catalog
from regularity_jax.data import image_folders
from regularity_jax.data import local_files
from regularity_jax.data import tfds_source
from regularity_jax.data.catalog import DatasetInfo
from regularity_jax.data.raw import RawData, RawSplit, in_memory
from regularity_jax.data.types import DataError

KINDS = ("catalog", "path", "function", "tfds")
DRAWS = ("image", "line", "text")
CONTRACT = "docs/your_data.md"
_TFDS_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[A-Za-z0-9_.\-]+)?(:[0-9.*]+)?$")


def kind(spec) -> str:
  """Which door `spec` names (module docstring); DataError for what names none."""
  if not isinstance(spec, str) or not spec.strip():
    raise DataError(f"dataset={spec!r} must be a string: a catalog name "
                    f"({', '.join(catalog.DATASETS)}), a path to an .npz or image folder, "
                    f"'package.module:fn', 'path/to/file.py:fn' or a TFDS name ({CONTRACT})")
  if spec in catalog.INFOS:
    return "catalog"
  module, sep, attr = spec.rpartition(":")
  if sep and module and attr.isidentifier():
    return "function"
  path = pathlib.Path(spec).expanduser()
  if (spec.endswith((".npz", ".tar.gz", ".tgz", ".tar")) or spec.startswith((".", "~", "/"))
      or os.sep in spec and path.exists()):
    return "path"
  if _TFDS_NAME.match(spec):
    return "tfds"
  raise DataError(f"unknown dataset {spec!r}: {close_hint(spec)}neither a catalog name "
                  f"({', '.join(catalog.DATASETS)}), an existing path, 'package.module:fn' nor "
                  f"a TFDS name; set --config.dataset to one of those ({CONTRACT})")


def close_hint(spec: str) -> str:
  """"did you mean 'cifar10'? " for a near miss of a catalog name, else ""."""
  close = difflib.get_close_matches(str(spec).lower().replace("-", "_"), catalog.DATASETS, n=1,
                                    cutoff=0.6)
  return f"did you mean {close[0]!r}? " if close else ""


def derived_info(name: str, class_names, example_shape, tfds_name: str | None = None
                 ) -> DatasetInfo:
  """A `DatasetInfo` whose classes and shape come from the data."""
  shape = tuple(int(d) for d in example_shape)
  return DatasetInfo(name=name, class_names=tuple(str(n) for n in class_names),
                     channels=shape[-1] if shape else 1, tfds_name=tfds_name,
                     native_files="its own files", spatial_shape=shape[:-1])


def _class_names(raw: RawData, where: str) -> tuple[str, ...]:
  """The stored names, else "0".."max label" (labels of both splits)."""
  top = int(max(raw.train.labels.max(initial=0), raw.test.labels.max(initial=0)))
  if raw.class_names is not None:
    if len(raw.class_names) <= top:
      raise DataError(f"{where} names {len(raw.class_names)} classes but has label {top}; store "
                      f"{top + 1} class_names (index = label), or none")
    return tuple(raw.class_names)
  return tuple(str(i) for i in range(top + 1))


def _first_shape(split: RawSplit) -> tuple[int, ...]:
  return tuple(np.asarray(split.read(np.zeros(1, np.int64))).shape[1:])


def load_path(spec: str, *, cache_dir=None) -> tuple[DatasetInfo, RawData]:
  """An .npz file or an image folder (or its archive), its classes and shape from the data."""
  path = pathlib.Path(spec).expanduser().resolve()
  if not path.exists():
    raise DataError(f"dataset {spec!r}: {path} does not exist; pass the path of an .npz (x_train, "
                    "y_train, x_test, y_test[, class_names]) or of an image folder holding "
                    f"train/<class>/ and test/<class>/ ({CONTRACT})")
  if path.is_file() and path.suffix == ".npz":
    raw = local_files.load_npz(path)
    name = path.stem
  elif path.is_dir() or path.name.endswith((".tar.gz", ".tgz", ".tar")):
    name = path.name.split(".")[0]
    found, channels = image_folders.survey(path)
    if all(c.isdigit() for c in found):
      found = sorted(found, key=int)
    raw = image_folders.load_image_folder(path, derived_info(name, found, (channels,)),
                                          cache_dir=cache_dir)
  else:
    raise DataError(f"dataset {spec!r}: {path} is neither an .npz nor an image folder; pass one "
                    f"of those ({CONTRACT})")
  names = _class_names(raw, str(path))
  return derived_info(name, names, _first_shape(raw.train)), raw


def tfds_info(name: str, options=None) -> DatasetInfo:
  """Classes, names and shape of TFDS builder `name` from its info (no data read)."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise DataError(f"unknown dataset {name!r}: not a catalog name "
                    f"({', '.join(catalog.DATASETS)}), and tensorflow_datasets, which would look "
                    "it up as a TFDS builder, is not installed; pip install -e '.[tfds]', or set "
                    f"--config.dataset to a path or 'module:fn' ({CONTRACT})") from None
  kwargs = {"data_dir": options.data_dir} if options is not None and options.data_dir else {}
  try:
    builder = tfds.builder(name, **kwargs)
  except Exception as e:  # pylint: disable=broad-except
    damaged = tfds_source.damaged_build(name, options, e)
    if damaged:
      raise DataError(damaged) from None
    raise DataError(f"unknown dataset {name!r}: {close_hint(name)}not a catalog name "
                    f"({', '.join(catalog.DATASETS)}) nor a TFDS builder "
                    f"({type(e).__name__}); set --config.dataset to one of those, a path to an "
                    f".npz or image folder, or 'module:fn' ({CONTRACT})") from None
  info = builder.info
  keys = info.supervised_keys or ("image", "label")
  try:
    label, image = info.features[keys[1]], info.features[keys[0]]
    names, shape = tuple(label.names), tuple(image.shape)
  except (AttributeError, KeyError, TypeError):
    raise DataError(f"TFDS dataset {name!r} is not image classification (no {keys[0]!r} image "
                    f"and {keys[1]!r} class label); save it as an .npz and pass its path "
                    f"({CONTRACT})") from None
  size = tuple(options.image_size) if options is not None else ()
  if size and (len(size) != 2 or not all(isinstance(d, int) and d > 0 for d in size)):
    raise DataError(f"tfds.image_size={size!r} must be (height, width) in pixels, e.g. "
                    "--config.tfds.image_size='(64, 64)', or () for the images as they are")
  if size:
    if shape[-1] is None:
      raise DataError(f"TFDS dataset {name!r} has images of {shape} (channels unknown); save "
                      f"them as an .npz and pass its path ({CONTRACT})")
    shape = size + shape[-1:]
  if any(d is None for d in shape):
    raise DataError(f"TFDS dataset {name!r} has images of varying size {shape}; set "
                    "--config.tfds.image_size='(H, W)' to resize every image to H x W as it is "
                    "read, or save them resized as an .npz (x_train, y_train, x_test, y_test) "
                    f"and pass its path ({CONTRACT})")
  return derived_info(name, names, shape, tfds_name=name)


def _from_mapping(out, split: str, where: str) -> tuple[RawSplit, dict[str, Any]]:
  missing = [k for k in ("labels", "class_names") if k not in out]
  if "inputs" not in out and "images" not in out:
    missing.insert(0, "inputs")
  if missing:
    raise DataError(f"{where}({split!r}) returned no {', '.join(missing)} (has "
                    f"{', '.join(sorted(out))}); return {{'inputs', 'labels', 'class_names'[, "
                    f"'ids', 'draw', 'vocabulary']}} ({CONTRACT})")
  draw = str(out.get("draw", ""))
  inputs = out["inputs"] if "inputs" in out else out["images"]
  split_data = in_memory(np.asarray(inputs), np.asarray(out["labels"]), split=split,
                         where=where, ids=out.get("ids"), integer_inputs=draw == "text")
  return split_data, {"class_names": out["class_names"], "draw": draw,
                      "vocabulary": out.get("vocabulary", ())}


def _from_source(source, split: str, where: str) -> tuple[RawSplit, dict[str, Any]]:
  n = len(source)
  if n == 0:
    raise DataError(f"{where}({split!r}) returned an empty source; give it examples")
  first = source.read(np.zeros(1, np.int64))
  missing = [k for k in ("image", "label", "id") if k not in first]
  if missing or not hasattr(source, "class_names"):
    what = ", ".join(missing) if missing else "a class_names attribute"
    raise DataError(f"{where}({split!r}) returned a source without {what}; read(positions) "
                    f"returns {{'image', 'label', 'id'}} and the source has class_names "
                    f"({CONTRACT})")
  draw = str(getattr(source, "draw", ""))
  # Labels and ids up front (from attributes when the source has them, else one read).
  if hasattr(source, "labels") and hasattr(source, "ids"):
    labels, ids = np.asarray(source.labels), np.asarray(source.ids)
  else:
    everything = source.read(np.arange(n))
    labels, ids = np.asarray(everything["label"]), np.asarray(everything["id"])
  # The checks of an in-memory split, on the first row; the inputs stay in the source.
  in_memory(np.asarray(first["image"]), labels[:1], split=split, where=where, ids=ids[:1],
            integer_inputs=draw == "text")
  if len(labels) != n or len(ids) != n:
    raise DataError(f"{where}({split!r}) returned a source of {n} examples with {len(labels)} "
                    f"labels and {len(ids)} ids; give one label and one id per example")
  checked = in_memory(np.zeros((n, 1), np.float32), labels, split=split, where=where, ids=ids)

  def reader(rows):
    inputs = np.asarray(source.read(rows)["image"])
    if draw == "text":
      inputs = inputs.astype(np.float32)
    return inputs if inputs.ndim > 2 else inputs[..., None]

  return (RawSplit(labels=checked.labels, reader=reader, ids=checked.ids),
          {"class_names": source.class_names, "draw": draw,
           "vocabulary": getattr(source, "vocabulary", ())})


def from_function(fn: Callable[..., Any], name: str,
                  kwargs: dict[str, Any]) -> tuple[DatasetInfo, RawData]:
  """Calls a dataset function for both splits and checks what it returned (module docstring)."""
  splits, meta = {}, {}
  for split in ("train", "test"):
    try:
      out = fn(split, **kwargs)
    except DataError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise DataError(f"dataset function {name}({split!r}) raised {type(e).__name__}: "
                      f"{' '.join(str(e).split())[:160]}; fix it (contract: {CONTRACT})") from None
    if hasattr(out, "read") and hasattr(out, "__len__"):
      splits[split], meta[split] = _from_source(out, split, name)
    elif isinstance(out, dict) or hasattr(out, "keys"):
      splits[split], meta[split] = _from_mapping(dict(out), split, name)
    else:
      raise DataError(f"dataset function {name}({split!r}) returned a {type(out).__name__}; "
                      "return a dict {'inputs', 'labels', 'class_names'[, 'ids']} or a source "
                      f"with __len__ and read(positions) ({CONTRACT})")
  names = [tuple(str(n) for n in meta[s]["class_names"]) for s in ("train", "test")]
  if names[0] != names[1]:
    raise DataError(f"dataset function {name} gives other class_names for train and test; "
                    "return the same names for both splits")
  draw = meta["train"]["draw"]
  if draw and draw not in DRAWS:
    raise DataError(f"dataset function {name} returned draw={draw!r}; use one of "
                    f"{', '.join(DRAWS)}")
  raw = RawData(train=splits["train"], test=splits["test"], source=f"function:{name}",
                class_names=names[0], any_shape=True, normalize=draw != "text", draw=draw,
                vocabulary=tuple(str(w) for w in meta["train"]["vocabulary"]))
  return derived_info(name, _class_names(raw, f"dataset function {name}"),
                      _first_shape(raw.train)), raw
