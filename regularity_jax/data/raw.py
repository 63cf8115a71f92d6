"""Unnormalized examples as a source delivers them, before `load_dataset`.

A source knows every label of a split up front but may decode images lazily:
image folders decode only the rows a subset asks for. `load_dataset` turns a
`RawData` into a normalized `Dataset`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from regularity_jax.data.types import DataError


@dataclasses.dataclass(frozen=True)
class RawSplit:
  """One split in canonical order, images possibly not decoded yet.

  Attributes:
    labels: int[N], every label of the split.
    images: u8|float[N, *example_shape] when the whole split is in memory,
      else None (then `reader` decodes rows on demand).
    reader: for lazy sources, maps i64[M] row indices to images
      u8|float[M, *example_shape].
    stats_indices: i64[S] rows whose pixels define the normalization mean and
      std, or None for all rows (only a training split's are used).
  """

  labels: np.ndarray
  images: np.ndarray | None = None
  reader: Callable[[np.ndarray], np.ndarray] | None = None
  stats_indices: np.ndarray | None = None

  def __post_init__(self):
    if (self.images is None) == (self.reader is None):
      raise ValueError("RawSplit takes exactly one of images and reader")

  def __len__(self) -> int:
    return len(self.labels)

  def read(self, indices: np.ndarray | None = None) -> np.ndarray:
    """Images of the given rows (all rows for None), unnormalized."""
    if self.images is not None:
      return self.images if indices is None else self.images[indices]
    if indices is None:
      indices = np.arange(len(self.labels))
    return self.reader(np.asarray(indices, np.int64))


@dataclasses.dataclass(frozen=True)
class RawData:
  """Both splits of a dataset as one source delivered them.

  Attributes:
    train: the training split.
    test: the test split.
    source: "generated:NAME", "local:/abs/path" or "tfds:NAME".
    class_names: names found in the files (e.g. CIFAR `meta`), index = label;
      None to use the catalog's names.
    any_shape: the source may hold examples of any shape under any dataset name (an .npz,
      the generic container); other sources must match the dataset's shape.
  """

  train: RawSplit
  test: RawSplit
  source: str
  class_names: tuple[str, ...] | None = None
  any_shape: bool = False


def in_memory(images: np.ndarray, labels: np.ndarray, *, split: str,
              where: str) -> RawSplit:
  """A `RawSplit` over arrays already in memory, shapes made NHWC-like.

  Args:
    images: u8|float[N, H, W, C] or [N, D, C] as is; [N, H, W] or [N, D]
      get a trailing channel axis (an [N, A, B] array whose last axis is 1 or
      3 is taken as already having channels).
    labels: int[N] (an [N, 1] column is flattened).
    split: "train" or "test", for messages.
    where: the file or directory, for messages.

  Returns:
    The `RawSplit`.
  """
  images = np.asarray(images)
  labels = np.asarray(labels)
  if labels.ndim == 2 and labels.shape[1] == 1:
    labels = labels[:, 0]
  if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
    raise DataError(
        f"{split} labels in {where} have dtype {labels.dtype} and shape "
        f"{labels.shape}; store them as one integer class index per example")
  if images.ndim == 2 or (images.ndim == 3 and images.shape[-1] not in (1, 3)):
    images = images[..., None]
  if images.ndim not in (3, 4):
    raise DataError(
        f"{split} images in {where} have shape {images.shape}; store them as "
        "[N, H, W, C], [N, H, W], [N, D, C] or [N, D]")
  if not (images.dtype == np.uint8 or np.issubdtype(images.dtype,
                                                    np.floating)):
    raise DataError(
        f"{split} images in {where} have dtype {images.dtype}; store uint8 "
        "pixels in [0, 255] or floats")
  if len(images) != len(labels):
    raise DataError(
        f"{split} split in {where} has {len(images)} images but "
        f"{len(labels)} labels; give one label per image")
  if len(labels) == 0:
    raise DataError(f"{split} split in {where} is empty; add examples to it")
  return RawSplit(labels=labels, images=images)
