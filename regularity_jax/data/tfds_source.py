"""Datasets through TensorFlow Datasets (TFDS): prepared data first, the reader chosen by format.

What happens for a dataset name with `data_dir=None`:

1. `tfds.builder(name, data_dir=options.data_dir)` looks for prepared data (in
   `options.data_dir`, else `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`). No network.
2. Prepared data are read by the reader of their file format, never by whether TensorFlow
   happens to be installed: array_record (and parquet) through `tfds.data_source`, by random
   access, with or without TensorFlow; tfrecord through `tf.data` (`builder.as_dataset`),
   which needs TensorFlow.
3. Data that are not prepared are downloaded and prepared (as array_record, which both readers
   read) only if `options.download` allows it; preparing needs TensorFlow and
   importlib_resources (`pip install -e '.[tfds]'`). The network is probed first (a few
   seconds), so a machine without network fails at once instead of after TFDS's retries,
   unless TFDS's download cache (<data dir>/downloads) or the manual dir holds files: then
   TFDS prepares offline from them (a file they lack fails in one line).

A prepared build whose dataset_info.json or features.json is damaged is named as such (delete
that version folder and prepare it again), not blamed on the TFDS version.

Every failure is one `DataError` line that keeps the cause and names the fix: install the
extra, the offline recipe (prepare elsewhere with `python -m experiments.prepare_tfds
--dataset=NAME --tfds_data_dir=DIR`, copy DIR, pass `--config.tfds.data_dir=DIR`), or local files.
(`prepare_tfds` is what `tfds build NAME --file_format=array_record` does; tensorflow-datasets
4.9.10's `tfds` command fails to start without apache_beam.)

Example ids index TFDS's deterministic split order (`shuffle_files=False`; both readers give
the same order). It is TFDS's own order, not the order of the dataset's original files: TFDS
stores MNIST in a fixed permutation of the IDX order, so ids from TFDS and ids from local IDX
files name different examples. The run's provenance (`runs.scores_file`) records the source,
and scores of one source are refused for the other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import os
import pathlib
import socket

import numpy as np

from regularity_jax.data.catalog import DatasetInfo
from regularity_jax.data.raw import RawData, in_memory
from regularity_jax.data.types import DataError

_SPLITS = ("train", "test")
# Where TFDS downloads most datasets from; probed before a download.
NETWORK_PROBE = ("storage.googleapis.com", 443)
PROBE_TIMEOUT_S = 5.0


@dataclasses.dataclass(frozen=True)
class TfdsOptions:
  """How to find or make a TFDS dataset.

  Attributes:
    data_dir: TFDS's data directory; None for TFDS's default (`$TFDS_DATA_DIR` or
      `~/tensorflow_datasets`).
    manual_dir: TFDS's manual-download directory (for datasets TFDS cannot download itself);
      None for TFDS's default (`<data_dir>/downloads/manual`).
    download: download and prepare data that are not prepared yet.
  """

  data_dir: str | None = None
  manual_dir: str | None = None
  download: bool = True
  image_size: tuple = ()


def resize(image: np.ndarray, size) -> np.ndarray:
  """u8[H, W, C] -> u8[size[0], size[1], C] with Pillow's bilinear filter (antialiased when
  shrinking, as big_vision's `resize` and tf.image.resize(antialias=True) are)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  image = np.asarray(image)
  if tuple(image.shape[:2]) == tuple(size):
    return image
  if image.dtype != np.uint8:
    raise DataError(f"tfds.image_size resizes uint8 images; these are {image.dtype}: set "
                    "--config.tfds.image_size=() and save them resized as an .npz")
  out = [np.asarray(Image.fromarray(image[..., c]).resize((int(size[1]), int(size[0])),
                                                          Image.Resampling.BILINEAR))
         for c in range(image.shape[-1])]
  return np.stack(out, axis=-1)


def _local_fix(info: DatasetInfo) -> str:
  return (f"or pass --config.data_dir=DIR holding {info.native_files}, "
          "train/<class>/ and test/<class>/ image folders, or "
          f"{info.name}.npz with x_train, y_train, x_test, y_test")


def _offline_recipe(info: DatasetInfo) -> str:
  return (f"prepare it where there is network (pip install -e '.[tfds]'; python -m "
          f"experiments.prepare_tfds --dataset={info.name} --tfds_data_dir=DIR), copy DIR here "
          "and pass --config.tfds.data_dir=DIR")


def _importable(module: str) -> bool:
  """Whether `module` is installed, without importing it (TensorFlow logs on import)."""
  try:
    return importlib.util.find_spec(module) is not None
  except (ImportError, ValueError):
    return False


def _first_line(error: BaseException, limit: int = 400) -> str:
  """The innermost cause's type and first line: TFDS wraps the real reason several times."""
  while error.__cause__ is not None or (
      error.__context__ is not None and not error.__suppress_context__):
    error = error.__cause__ or error.__context__
  text = str(error).strip()
  line = text.splitlines()[0] if text else ""
  return f"{type(error).__name__}: {line[:limit]}"


def network_reachable(address=None, timeout: float = PROBE_TIMEOUT_S) -> str | None:
  """None if a TCP connection to `address` (default NETWORK_PROBE) opens within `timeout` s,
  else why not."""
  address = address or NETWORK_PROBE
  try:
    with socket.create_connection(address, timeout=timeout):
      return None
  except OSError as e:
    return f"{address[0]}:{address[1]} unreachable ({type(e).__name__}: {e})"


@contextlib.contextmanager
def _quiet_tfds():
  """TFDS's absl warnings (e.g. on a data dir without a build) off; the DataError says it."""
  try:
    from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  except ImportError:
    yield
    return
  verbosity = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.ERROR)
  try:
    yield
  finally:
    absl_logging.set_verbosity(verbosity)


def load_tfds(info: DatasetInfo, options: TfdsOptions | None = None) -> RawData:
  """Loads both splits of `info.tfds_name` through TFDS as numpy arrays.

  Args:
    info: the dataset's catalog entry; `info.tfds_name` must be set.
    options: where the prepared data are and whether to download; default `TfdsOptions()`.

  Returns:
    The `RawData`: images u8[N, H, W, C] and labels in TFDS's split order, class names from
    the TFDS info, source "tfds:NAME".

  Raises:
    DataError: TFDS is missing, the data are neither prepared nor may be (or can be)
      downloaded, or the prepared format needs TensorFlow and it is not installed.
  """
  options = options or TfdsOptions()
  tfds = _import_tfds(info)
  with _quiet_tfds():
    return _read(tfds, _prepared_builder(tfds, info, options), info, tuple(options.image_size))


def _import_tfds(info: DatasetInfo):
  if info.tfds_name is None:
    raise DataError(f"{info.name} is not served by tensorflow_datasets; {_local_fix(info)[3:]}")
  try:
    return importlib.import_module("tensorflow_datasets")
  except ImportError as e:
    raise DataError(
        f"{info.name} with data_dir='' loads through tensorflow_datasets, which is not "
        f"importable ({e}); pip install -e '.[tfds]', {_local_fix(info)}") from e


def _prepared_builder(tfds, info: DatasetInfo, options: TfdsOptions):
  """The builder of the prepared data, prepared now (as array_record) if they were not."""
  builder = _builder(tfds, info, options)
  if not builder.is_prepared():
    builder = _builder(tfds, info, options, file_format="array_record")
    _prepare(tfds, builder, info, options)
  return builder


def _read(tfds, builder, info: DatasetInfo, size=()) -> RawData:
  """Both splits of a prepared `builder`, by the reader of its file format; every image resized
  to `size` (H, W) when given."""
  file_format = _file_format(builder)
  try:
    if file_format == "tfrecord":
      splits = _via_tf_data(tfds, builder, info, size)
    else:
      splits = _via_data_source(tfds, builder, size)
  except DataError:
    raise
  except Exception as e:  # a damaged or partial build: TFDS raises many kinds
    raise DataError(
        f"tensorflow_datasets could not read the prepared {info.tfds_name} "
        f"({file_format}) in {builder.data_dir} ({_first_line(e)}); delete that version "
        f"directory and prepare it again, {_local_fix(info)}") from e
  where = f"tfds:{info.tfds_name}"
  return RawData(
      train=in_memory(*splits["train"], split="train", where=where),
      test=in_memory(*splits["test"], split="test", where=where),
      source=where,
      class_names=_label_names(builder.info))


def prepare_tfds(info: DatasetInfo, options: TfdsOptions) -> str:
  """Downloads and prepares `info.tfds_name` as array_record (unless prepared); returns its dir.

  The first half of the offline recipe: run where there is network, then copy
  `options.data_dir` to the machine without it.

  Raises:
    DataError: as `load_tfds`, in one line.
  """
  tfds = _import_tfds(info)
  with _quiet_tfds():
    return str(_prepared_builder(tfds, info, options).data_dir)


def _builder(tfds, info: DatasetInfo, options: TfdsOptions, **kwargs):
  """The builder of `info.tfds_name`: its prepared data if any (in their own format)."""
  if options.data_dir:
    kwargs["data_dir"] = options.data_dir
  try:
    return tfds.builder(info.tfds_name, **kwargs)
  except Exception as e:
    damaged = damaged_build(info.tfds_name, options, e, info)
    if damaged:
      raise DataError(damaged) from e
    raise DataError(
        f"tensorflow_datasets has no builder for {info.tfds_name} ({_first_line(e)}); "
        f"upgrade tensorflow-datasets, {_local_fix(info)}") from e


def prepared_dirs(tfds_name: str, options: TfdsOptions | None) -> list[str]:
  """The version folders of `tfds_name` prepared in TFDS's data dir (those holding a
  dataset_info.json or features.json), e.g. [".../mnist/3.0.1"]."""
  base, _, version = tfds_name.partition(":")
  root = pathlib.Path(_default_data_dir(options or TfdsOptions())).expanduser() / base
  if not root.is_dir():
    return []
  found = {p.parent for name in ("dataset_info.json", "features.json")
           for p in root.rglob(name)}
  return sorted(str(p) for p in found if not version or p.name == version)


def damaged_build(tfds_name: str, options: TfdsOptions | None, error: BaseException,
                  info: DatasetInfo | None = None) -> str:
  """The one line for a builder TFDS cannot make although `tfds_name` is prepared in the data
  dir (its dataset_info.json or features.json damaged), else ""."""
  found = prepared_dirs(tfds_name, options)
  if not found:
    return ""
  fix = (_offline_recipe(info) if info is not None else
         f"prepare it again (python -m experiments.prepare_tfds --dataset={tfds_name} "
         "--tfds_data_dir=DIR) and pass --config.tfds.data_dir=DIR")
  return (f"the prepared TFDS build of {tfds_name} in {found[-1]} cannot be read "
          f"({_first_line(error, 160)}): a damaged build, not a TFDS version problem; delete "
          f"that folder and {fix[0].lower()}{fix[1:]}")


def _default_data_dir(options: TfdsOptions) -> str:
  return options.data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"


def _prepare(tfds, builder, info: DatasetInfo, options: TfdsOptions) -> None:
  """Downloads and prepares `builder` as array_record, or says in one line why it can't."""
  where = _default_data_dir(options)
  missing = f"{info.tfds_name} is not prepared in {where}"
  if not options.download:
    raise DataError(f"{missing} and --config.tfds.download=False; "
                    f"{_offline_recipe(info)}, {_local_fix(info)}")
  for module, why in (("tensorflow", "preparing TFDS data needs TensorFlow"),
                      ("importlib_resources", "preparing TFDS data needs importlib_resources")):
    if not _importable(module):
      raise DataError(f"{missing}: {why} (No module named {module!r}); "
                      f"pip install -e '.[tfds]', {_local_fix(info)}")
  unreachable = network_reachable()
  cached = _download_cache(options)
  if unreachable is not None and not cached:
    raise DataError(f"{missing} and the network is not reachable ({unreachable}), nor are its "
                    f"downloads in TFDS's download cache ({_download_dir(options)}); "
                    f"{_offline_recipe(info)}, {_local_fix(info)}")
  # Offline with downloads in TFDS's cache (or a manual dir): TFDS prepares from them; a file
  # they lack fails in TFDS's download, whose cause the line below keeps.
  config = tfds.download.DownloadConfig(manual_dir=options.manual_dir or None,
                                        try_download_gcs=unreachable is None)
  try:
    builder.download_and_prepare(download_config=config)
  except Exception as e:
    raise DataError(
        f"tensorflow_datasets could not download and prepare {info.tfds_name} in {where} "
        f"({_first_line(e)}); {_offline_recipe(info)}, {_local_fix(info)}") from e


def _download_dir(options: TfdsOptions) -> str:
  """TFDS's download cache: <data dir>/downloads."""
  return os.path.join(os.path.expanduser(_default_data_dir(options)), "downloads")


def _download_cache(options: TfdsOptions) -> bool:
  """Whether TFDS's download cache or the manual dir holds any file (then TFDS may prepare
  without network)."""
  folders = [_download_dir(options)] + ([options.manual_dir] if options.manual_dir else [])
  for folder in folders:
    for _, _, files in os.walk(os.path.expanduser(folder)):
      if files:
        return True
  return False


def _file_format(builder) -> str:
  file_format = builder.info.file_format
  return str(getattr(file_format, "value", file_format) or "tfrecord")


def _label_names(builder_info) -> tuple[str, ...] | None:
  try:
    return tuple(str(n) for n in builder_info.features["label"].names)
  except (AttributeError, KeyError, TypeError):
    return None


def _supervised_keys(builder) -> tuple[str, str]:
  keys = builder.info.supervised_keys or ("image", "label")
  return str(keys[0]), str(keys[1])


def _via_tf_data(tfds, builder, info: DatasetInfo, size=()):
  if not _importable("tensorflow"):
    raise DataError(
        f"{info.tfds_name} in {builder.data_dir} is prepared as tfrecord, which only "
        "TensorFlow reads; pip install -e '.[tfds]', or prepare it again as array_record in "
        f"another DIR (python -m experiments.prepare_tfds --dataset={info.name} "
        f"--tfds_data_dir=DIR), {_local_fix(info)}")
  splits = {}
  if size:  # example by example: images of varying size do not batch
    for split in _SPLITS:
      pairs = list(tfds.as_numpy(builder.as_dataset(split=split, as_supervised=True,
                                                    shuffle_files=False)))
      splits[split] = (np.stack([resize(image, size) for image, _ in pairs]),
                       np.asarray([label for _, label in pairs]))
    return splits
  loaded = builder.as_dataset(split=list(_SPLITS), batch_size=-1, as_supervised=True,
                              shuffle_files=False)
  for split, batch in zip(_SPLITS, loaded):
    images, labels = tfds.as_numpy(batch)
    splits[split] = (np.asarray(images), np.asarray(labels))
  return splits


def _via_data_source(tfds, builder, size=()):
  image_key, label_key = _supervised_keys(builder)
  splits = {}
  for split in _SPLITS:
    source = builder.as_data_source(split=split)
    records = source.__getitems__(list(range(len(source))))
    splits[split] = (np.stack([resize(r[image_key], size) if size else np.asarray(r[image_key])
                               for r in records]),
                     np.asarray([r[label_key] for r in records]))
  return splits
