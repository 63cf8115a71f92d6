"""Datasets through TensorFlow Datasets (TFDS), with or without TensorFlow.

With TensorFlow installed, `tfds.load(name, split=["train", "test"],
batch_size=-1, as_supervised=True)` reads each split as one batch and
`tfds.as_numpy` converts it. Without TensorFlow, `tfds.data_source` reads the
prepared files (array_record) by random access. Either way TFDS downloads and
prepares the data on first use unless `download=False`; any failure (TFDS not
installed, no network, data not prepared) becomes a `DataError` that points to
local files instead.

Canonical order (what example ids index) is TFDS's deterministic split order
(`shuffle_files=False`), which need not match the order of the same dataset's
local files.
"""

from __future__ import annotations

import importlib

import numpy as np

from regularity_jax.data.catalog import DatasetInfo
from regularity_jax.data.raw import RawData, in_memory
from regularity_jax.data.types import DataError

_SPLITS = ("train", "test")


def _fix(info: DatasetInfo) -> str:
  return (f"pass --config.data_dir=DIR holding {info.native_files}, "
          "train/<class>/ and test/<class>/ image folders, or "
          f"{info.name}.npz with x_train, y_train, x_test, y_test")


def _has_tensorflow() -> bool:
  try:
    importlib.import_module("tensorflow")
  except ImportError:
    return False
  return True


def load_tfds(info: DatasetInfo, *, download: bool = True,
              tfds_data_dir: str | None = None) -> RawData:
  """Loads both splits of `info.tfds_name` through TFDS as numpy arrays.

  Args:
    info: the dataset's catalog entry; `info.tfds_name` must be set.
    download: let TFDS download and prepare missing data.
    tfds_data_dir: TFDS's data directory (default: TFDS's own,
      `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).

  Returns:
    The `RawData`, images u8[N, H, W, C], class names from the TFDS info.

  Raises:
    DataError: TFDS is missing, or the data cannot be found or downloaded.
  """
  if info.tfds_name is None:
    raise DataError(f"{info.name} is not served by tensorflow_datasets; "
                    f"{_fix(info)}")
  try:
    tfds = importlib.import_module("tensorflow_datasets")
  except ImportError as e:
    raise DataError(
        f"{info.name} with data_dir=None loads through tensorflow_datasets, "
        f"which is not importable ({e}); pip install tensorflow-datasets, or "
        f"{_fix(info)}") from e
  try:
    if _has_tensorflow():
      splits, names = _via_tf_data(tfds, info, download, tfds_data_dir)
    else:
      splits, names = _via_data_source(tfds, info, download, tfds_data_dir)
  except DataError:
    raise
  except Exception as e:  # TFDS raises many kinds; all mean "not available".
    message = str(e).strip().splitlines()[0] if str(e).strip() else ""
    raise DataError(
        f"tensorflow_datasets could not provide {info.tfds_name} "
        f"({type(e).__name__}: {message[:300]}); check network access or "
        f"TFDS_DATA_DIR, or {_fix(info)}") from e
  where = f"tfds:{info.tfds_name}"
  return RawData(
      train=in_memory(*splits["train"], split="train", where=where),
      test=in_memory(*splits["test"], split="test", where=where),
      source=where,
      class_names=names)


def _label_names(builder_info) -> tuple[str, ...] | None:
  try:
    return tuple(str(n) for n in builder_info.features["label"].names)
  except (AttributeError, KeyError, TypeError):
    return None


def _via_tf_data(tfds, info, download, tfds_data_dir):
  loaded, builder_info = tfds.load(
      info.tfds_name, split=list(_SPLITS), batch_size=-1, as_supervised=True,
      shuffle_files=False, download=download, data_dir=tfds_data_dir,
      with_info=True)
  splits = {}
  for split, batch in zip(_SPLITS, loaded):
    images, labels = tfds.as_numpy(batch)
    splits[split] = (np.asarray(images), np.asarray(labels))
  return splits, _label_names(builder_info)


def _via_data_source(tfds, info, download, tfds_data_dir):
  sources = tfds.data_source(info.tfds_name, split=list(_SPLITS),
                             download=download, data_dir=tfds_data_dir)
  splits = {}
  for split, source in zip(_SPLITS, sources):
    records = source.__getitems__(list(range(len(source))))
    splits[split] = (np.stack([r["image"] for r in records]),
                     np.asarray([r["label"] for r in records]))
  builder_info = getattr(sources[0], "dataset_info", None)
  return splits, _label_names(builder_info)
