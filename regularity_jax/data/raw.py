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
    ids: int[N] example ids of the rows (a dataset function's own), or None for
      the row numbers 0..N-1 (every file source).
  """

  labels: np.ndarray
  images: np.ndarray | None = None
  reader: Callable[[np.ndarray], np.ndarray] | None = None
  stats_indices: np.ndarray | None = None
  ids: np.ndarray | None = None

  def __post_init__(self):
    if (self.images is None) == (self.reader is None):
      raise ValueError("RawSplit takes exactly one of images and reader")

  def __len__(self) -> int:
    return len(self.labels)

  @property
  def row_ids(self) -> np.ndarray:
    """i64[N]: the id of every row (`ids`, else 0..N-1)."""
    return (np.arange(len(self.labels)) if self.ids is None
            else np.asarray(self.ids, np.int64))

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
    normalize: normalize per channel (images, signals); False keeps the values as they are
      (token ids of a text dataset).
    draw: how the report draws one example: "image", "line" or "text"; "" = by its shape
      (images [H, W, C], line plots [L] or [L, C]).
    vocabulary: for text, token id -> string (the report's sentences); () when not text.
  """

  train: RawSplit
  test: RawSplit
  source: str
  class_names: tuple[str, ...] | None = None
  any_shape: bool = False
  normalize: bool = True
  draw: str = ""
  vocabulary: tuple[str, ...] = ()


def in_memory(images: np.ndarray, labels: np.ndarray, *, split: str,
              where: str, ids: np.ndarray | None = None,
              integer_inputs: bool = False) -> RawSplit:
  """A `RawSplit` over arrays already in memory, shapes made NHWC-like.

  Args:
    images: u8|float[N, H, W, C] or [N, D, C] as is; [N, H, W] or [N, D]
      get a trailing channel axis (an [N, A, B] array whose last axis is 1 or
      3 is taken as already having channels).
    labels: int[N] (an [N, 1] column is flattened).
    split: "train" or "test", for messages.
    where: the file or directory, for messages.
    ids: int[N] the rows' example ids (distinct, >= 0), or None for 0..N-1.
    integer_inputs: integer inputs (token ids) are allowed and kept as float32 values.

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
  if integer_inputs and np.issubdtype(images.dtype, np.integer):
    if len(images) and (images.min() < 0 or images.max() >= 2 ** 24):
      raise DataError(
          f"{split} token ids in {where} lie outside [0, 2**24) (min {images.min()}, max "
          f"{images.max()}); number the vocabulary from 0")
    images = images.astype(np.float32)  # exact below 2**24; the model casts them back
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
  if ids is not None:
    ids = np.asarray(ids)
    if ids.shape != labels.shape or not np.issubdtype(ids.dtype, np.integer):
      raise DataError(
          f"{split} split in {where} has {len(labels)} labels but ids of shape {ids.shape} "
          f"and dtype {ids.dtype}; give one integer id per example")
    if len(ids) and (ids.min() < 0 or len(np.unique(ids)) != len(ids)):
      raise DataError(
          f"{split} ids in {where} are negative or repeated; give every example its own id "
          ">= 0 (e.g. its row number)")
  return RawSplit(labels=labels, images=images, ids=ids)
