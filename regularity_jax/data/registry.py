"""`load_dataset`: a supported dataset by name, normalized, with example ids."""

from __future__ import annotations

import dataclasses
import difflib
import os

import numpy as np

from regularity_jax.data import catalog
from regularity_jax.data import identity as identity_lib
from regularity_jax.data import local_files
from regularity_jax.data import mnist1d_source
from regularity_jax.data import normalization
from regularity_jax.data import permutation
from regularity_jax.data import releases
from regularity_jax.data import sources
from regularity_jax.data import subsets
from regularity_jax.data import tfds_source
from regularity_jax.data.raw import RawData, RawSplit
from regularity_jax.data import types
from regularity_jax.data.types import DataError, Dataset, Split

DATASETS = catalog.DATASETS


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *,
                 train_subset: int | None = None,
                 test_subset: int | None = None, subset_seed: int = 0,
                 cache_dir: str | os.PathLike | None = None,
                 tfds_options: tfds_source.TfdsOptions | None = None,
                 permute_pixels_seed: int | None = None,
                 check_release: bool = False) -> Dataset:
  """Loads a dataset by name or path, from local files, TFDS, or (mnist1d) generated.

  `name` is a catalog name (`DATASETS`), or any other dataset (`sources`): an .npz file or an
  image folder by path (classes, class names and shapes from the data; `data_dir` unused), or
  a TFDS image-classification builder's name (classes, names and shapes from its info). A
  dataset function ('package.module:fn') is resolved by the caller and loaded with
  `load_function`.

  Sources:
    * `data_dir` given: local files in that directory, format detected from
      its contents (IDX, CIFAR python release, SVHN .mat, image folders or
      their .tar.gz, .npz; see `local_files`). Never touches the network.
    * `data_dir=None`, name "mnist1d": generated with the `mnist1d` package
      (its defaults, seed 42: 4000 train / 1000 test, shape (40, 1)).
    * `data_dir=None`, any other name: tensorflow_datasets: its prepared data
      (read by their file format), else downloaded and prepared if
      `tfds_options.download`; if TFDS cannot provide the data, a one-line
      `DataError` keeps the cause and names the fix (see `tfds_source`).

  Images are float32 NHWC (grayscale gets a trailing channel of 1; mnist1d is
  [N, 40, 1]), uint8 pixels scaled to [0, 1], then normalized per channel with
  the mean and std of the FULL training split, before subsetting and before
  any corruption; so the same example has the same pixels at every subset
  size. (Image folders with more than 10000 training images take the stats
  from a fixed sample of them; see `image_folders`.) The stats are kept in
  `Dataset.pixel_mean` / `pixel_std`. Labels are int32.

  `ids[k]` is the index of example k in the canonical order of the full split
  (see each source for that order). `train_subset=n` keeps n training
  examples chosen at random with `subset_seed`, class-stratified as nearly as
  integers allow, sorted by id; ids stay those of the full split.
  `test_subset` does the same for the test split, with an independent stream
  of the same seed.

  `permute_pixels_seed=s` permutes the pixel positions of every image of both
  splits with one fixed permutation drawn from `s` (Toneva et al.'s permuted
  MNIST; `permutation`), as the images are read: the normalization statistics
  are those of the permuted training split. `Dataset.pixel_permutation` keeps it.

  Image folders decode only the examples a subset keeps, and cache a fully
  decoded split as .npz in `cache_dir` (default `~/.cache/regularity_jax`,
  keyed by the source's absolute path, size and mtime); other formats ignore
  `cache_dir`.

  Args:
    name: one of `DATASETS`.
    data_dir: directory with local files, or None (or "") for TFDS /
      generation.
    train_subset: number of training examples to keep, None for all.
    test_subset: number of test examples to keep, None for all.
    subset_seed: seed of the subset choice, >= 0.
    cache_dir: cache of decoded image folders.
    tfds_options: TFDS's data dir, manual dir and whether it may download
      (`tfds_source.TfdsOptions`; default: TFDS's data dir, download allowed).
    permute_pixels_seed: None (the images as they are) or the seed of one pixel
      permutation applied to every image.
    check_release: for a catalog name, compare the data with the name's known release
      (`releases`): other data are refused, other pixels warned about (the engine's runs).

  Returns:
    The `Dataset`.

  Raises:
    DataError: unknown name, missing or unrecognizable files, labels outside
      [0, num_classes), non-finite pixels, a channel count other than the
      dataset's (1 for the MNISTs, 3 for CIFAR and SVHN: catches a data_dir
      of another dataset), or a bad subset size; the message names the fix.
  """
  if isinstance(subset_seed, bool) or not isinstance(
      subset_seed, (int, np.integer)) or subset_seed < 0:
    raise DataError(f"subset_seed={subset_seed!r} is not a non-negative "
                    "integer; pass e.g. subset_seed=0")
  kind = sources.kind(name)
  if kind == "function":
    raise DataError(f"dataset {name!r} names a function: resolve it first and call "
                    "load_function (the engine does: training.setup.load_data)")
  if kind == "path":
    info, raw = sources.load_path(name, cache_dir=cache_dir)
  elif kind == "tfds":
    info = sources.tfds_info(name, tfds_options)
    raw = tfds_source.load_tfds(info, tfds_options)
  else:
    info = dataset_info(name)
    if data_dir is not None and str(data_dir):
      raw = local_files.load_local(info, data_dir, cache_dir=cache_dir)
    elif name == "mnist1d":
      raw = mnist1d_source.generate_mnist1d()
    else:
      raw = tfds_source.load_tfds(info, tfds_options)
  return from_raw(info, raw, train_subset=train_subset,
                  test_subset=test_subset, subset_seed=subset_seed,
                  permute_pixels_seed=permute_pixels_seed,
                  check_release=check_release and kind == "catalog")


def load_function(fn, name: str, kwargs=None, *, train_subset: int | None = None,
                  test_subset: int | None = None, subset_seed: int = 0,
                  permute_pixels_seed: int | None = None) -> Dataset:
  """Loads the dataset a dataset function returns (`sources.from_function`: the contract),
  then as `load_dataset`: validated, normalized (not text), subset; ids are the function's."""
  info, raw = sources.from_function(fn, name, dict(kwargs or {}))
  return from_raw(info, raw, train_subset=train_subset, test_subset=test_subset,
                  subset_seed=subset_seed, permute_pixels_seed=permute_pixels_seed)


def dataset_info(name: str) -> catalog.DatasetInfo:
  """The catalog entry of `name`; DataError listing DATASETS if unknown."""
  if isinstance(name, str) and name in catalog.INFOS:
    return catalog.INFOS[name]
  close = difflib.get_close_matches(str(name).lower().replace("-", "_"),
                                    DATASETS, n=1, cutoff=0.6)
  hint = f"did you mean {close[0]!r}? " if close else ""
  raise DataError(f"unknown dataset {name!r}: {hint}choose one of "
                  f"{', '.join(DATASETS)}")


def from_raw(info: catalog.DatasetInfo, raw: RawData, *,
             train_subset: int | None = None, test_subset: int | None = None,
             subset_seed: int = 0, permute_pixels_seed: int | None = None,
             check_release: bool = False) -> Dataset:
  """Validates, permutes (if asked), normalizes and subsets what a source delivered.

  Args:
    info: the dataset's catalog entry.
    raw: the source's splits in canonical order.
    train_subset: see `load_dataset`.
    test_subset: see `load_dataset`.
    subset_seed: see `load_dataset`.
    permute_pixels_seed: see `load_dataset`.
    check_release: see `load_dataset`.

  Returns:
    The `Dataset`.
  """
  perm = None

  def read(split: RawSplit, rows):
    """The rows' images, permuted when asked (the permutation drawn at the first read)."""
    nonlocal perm
    images = split.read(rows)
    if permute_pixels_seed is None:
      return images
    if perm is None:
      perm = permutation.pixel_permutation(permute_pixels_seed,
                                           int(np.prod(images.shape[1:-1])))
    return perm.apply(images)

  class_names = raw.class_names or info.class_names
  if len(class_names) != info.num_classes:
    raise DataError(
        f"{raw.source} names {len(class_names)} classes but {info.name} has "
        f"{info.num_classes}; store {info.num_classes} class_names, or none")
  ident = identity_lib.data_identity(raw)
  if check_release:  # first: other data under a catalog name end here, in one line
    ident = dataclasses.replace(ident, release=releases.check(info.name, raw, ident))
  # A catalog name's release sizes promise its shape too (an .npz may otherwise hold any shape;
  # other sizes are a part of it or a stand-in, `releases.check`)
  release = releases.RELEASES.get(info.name) if check_release else None
  strict_shape = release is not None and tuple(ident.sizes) == release.sizes
  _check_same_scaling(raw)
  for split_name, split in (("train", raw.train), ("test", raw.test)):
    _check_labels(split, split_name, info, raw.source)
    _check_finite(split, split_name, raw.source)
  _warn_empty_classes(raw.train, info, class_names, raw.source)

  subset_sizes = {"train": train_subset, "test": test_subset}
  splits, mean, std = {}, None, None
  for stream, split_name in enumerate(("train", "test")):
    split = getattr(raw, split_name)
    size = subset_sizes[split_name]
    rows = None if size is None else subsets.stratified_subset(
        split.labels, size, (subset_seed, stream), what=f"{split_name}_subset")
    if split_name == "train":
      if (split.images is None and rows is not None
          and split.stats_indices is not None):
        # A lazy source decodes just the stats sample and the subset.
        mean, std = normalization.channel_stats(read(split, split.stats_indices))
        images = read(split, rows)
      else:
        full = read(split, None)
        mean, std = normalization.channel_stats(
            full if split.stats_indices is None else full[split.stats_indices])
        images = full if rows is None else full[rows]
        del full
      if not raw.normalize:  # token ids stay ids
        mean, std = np.zeros_like(mean), np.ones_like(std)
    else:
      images = read(split, rows)
    if ((not raw.any_shape or strict_shape) and info.spatial_shape
        and tuple(images.shape[1:-1]) != info.spatial_shape):
      raise DataError(
          f"{raw.source} holds {split_name} images of shape "
          f"{'x'.join(map(str, images.shape[1:-1]))} but {info.name}'s are "
          f"{info.describe_shape()}; check that --config.data_dir points at {info.name} files, "
          f"or {releases.DOOR}")
    if images.shape[-1] != info.channels:
      raise DataError(
          f"{raw.source} holds {split_name} images with {images.shape[-1]} "
          f"channel(s) but {info.name} has {info.channels}; check that "
          f"--config.data_dir points at {info.name} files")
    row_ids = split.row_ids
    kept = np.arange(len(split)) if rows is None else rows
    splits[split_name] = Split.clean(
        normalization.normalize(images, mean, std), split.labels[kept], row_ids[kept])

  if splits["train"].images.shape[1:] != splits["test"].images.shape[1:]:
    raise DataError(
        f"{raw.source}: train examples have shape "
        f"{splits['train'].images.shape[1:]} but test examples "
        f"{splits['test'].images.shape[1:]}; give both splits one shape")
  if perm is not None:
    ident = dataclasses.replace(ident, transforms=(f"permute_pixels:{perm.sha256}",))
  draw = raw.draw or ("line" if len(splits["train"].images.shape) <= 3 else "image")
  return Dataset(name=info.name, train=splits["train"], test=splits["test"],
                 num_classes=info.num_classes, class_names=tuple(class_names),
                 source=raw.source, pixel_mean=tuple(float(m) for m in mean),
                 pixel_std=tuple(float(s) for s in std),
                 full_sizes=(len(raw.train), len(raw.test)), pixel_permutation=perm,
                 identity=ident, draw=draw, vocabulary=tuple(raw.vocabulary))


def _check_same_scaling(raw: RawData) -> None:
  """uint8 pixels are scaled by 1/255 and float ones taken as they are (`normalization`): a
  split of each would be scaled differently (uint8 training pixels beside float 0-255 test
  pixels), so they are refused."""
  first = np.zeros(1, np.int64)
  dtypes = [np.asarray(split.read(first)).dtype for split in (raw.train, raw.test)]
  if (dtypes[0] == np.uint8) != (dtypes[1] == np.uint8):
    raise DataError(
        f"{raw.source} holds {dtypes[0]} train images but {dtypes[1]} test images: uint8 pixels "
        "are scaled by 1/255 and float pixels taken as they are, so the splits would be scaled "
        "differently; store both splits as uint8 (0-255) or both as float")


def _check_labels(split: RawSplit, split_name: str,
                  info: catalog.DatasetInfo, source: str) -> None:
  labels = split.labels
  bad = (labels < 0) | (labels >= info.num_classes)
  if bad.any():
    raise DataError(
        f"{int(bad.sum())} {split_name} labels in {source} lie outside "
        f"[0, {info.num_classes}) (min {int(labels.min())}, max "
        f"{int(labels.max())}); fix the label files, or load them under the "
        "name of the dataset they belong to")


def _warn_empty_classes(split: RawSplit, info: catalog.DatasetInfo, class_names,
                        source: str) -> None:
  counts = np.bincount(np.asarray(split.labels, np.int64), minlength=info.num_classes)
  empty = np.flatnonzero(counts == 0)
  if len(empty):
    shown = ", ".join(f"{int(c)} ({class_names[c]})" for c in empty[:5])
    types.warn(
        f"{len(empty)} of {info.name}'s {info.num_classes} classes have no training example "
        f"in {source}: {shown}{', ...' if len(empty) > 5 else ''}; the model never sees them "
        "(check the files or the subset)")


# Float pixels beyond this magnitude are not images (uint8 pixels end at 255, unit ones at 1).
ABSURD_PIXEL = 1e4


def _check_finite(split: RawSplit, split_name: str, source: str) -> None:
  images = split.images
  if images is None or not np.issubdtype(images.dtype, np.floating):
    return  # integer pixels (and lazily decoded images) are always finite
  finite = np.isfinite(images.reshape(len(images), -1)).all(axis=1)
  if not finite.all():
    first = int(np.flatnonzero(~finite)[0])
    raise DataError(
        f"{int((~finite).sum())} {split_name} images in {source} have "
        f"non-finite pixels (NaN or inf; first at row {first}); repair or "
        "drop those examples in the files")
  magnitude = np.abs(images.reshape(len(images), -1)).max(axis=1, initial=0.0)
  absurd = magnitude > ABSURD_PIXEL
  if absurd.any():
    first = int(np.flatnonzero(absurd)[0])
    types.warn(
        f"{int(absurd.sum())} {split_name} images in {source} have pixels of magnitude up to "
        f"{float(magnitude.max()):.3g} (first at row {first}; images end at 255): they "
        "dominate the normalization and can overflow float32 in training; check those rows")
