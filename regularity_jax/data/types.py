"""The containers every loader returns: `Split`, `Dataset`, `DataError` (and `warn`).

Arrays are host numpy arrays. A `Split` keeps, next to images and labels, the
stable example ids that per-example statistics are indexed by, and the clean
labels and corruption flags that noise experiments (idea E) need.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np


def warn(message: str) -> None:
  """`warning: <message>` as one line on stderr: what a load survives but its user should know.
  (`regularity_jax.notices.warn` for the other packages; this package is a leaf and imports
  nothing else of regularity_jax.)"""
  print(f"warning: {' '.join(message.split())}", file=sys.stderr, flush=True)


class DataError(ValueError):
  """A problem with a dataset request or its files.

  The message is one line that names the problem and the fix, for example
  "no MNIST files in /x/y: expected ...; pass --config.data_dir=DIR holding
  those files".
  """


@dataclasses.dataclass(frozen=True)
class Split:
  """One split (train or test) of a dataset, as host numpy arrays.

  Attributes:
    images: f32[N, *example_shape], normalized per channel with the mean and
      std of the full training split (see `load_dataset`).
    labels: i32[N], the labels training uses (corrupted where `corrupted`).
    ids: i32[N], the index of each example in the canonical order of the full
      split; a subset keeps the ids of the full split.
    original_labels: i32[N], labels before any corruption (== labels when the
      split is clean).
    corrupted: bool[N], True where a corruption was applied to the example.
  """

  images: np.ndarray
  labels: np.ndarray
  ids: np.ndarray
  original_labels: np.ndarray
  corrupted: np.ndarray

  def __post_init__(self):
    n = len(self.images)
    lengths = {
        "labels": len(self.labels),
        "ids": len(self.ids),
        "original_labels": len(self.original_labels),
        "corrupted": len(self.corrupted),
    }
    bad = {k: v for k, v in lengths.items() if v != n}
    if bad:
      raise DataError(
          f"Split arrays disagree in length: images has {n} rows but "
          f"{bad}; build every array of a Split with one row per example")

  def __len__(self) -> int:
    return len(self.images)

  @classmethod
  def clean(cls, images: np.ndarray, labels: np.ndarray,
            ids: np.ndarray | None = None) -> Split:
    """A split without corruption: original_labels == labels, none corrupted.

    Args:
      images: f32[N, ...].
      labels: int[N], cast to int32.
      ids: int[N], cast to int32; defaults to arange(N).

    Returns:
      The `Split`.
    """
    labels = np.asarray(labels, np.int32)
    ids = (np.arange(len(labels), dtype=np.int32) if ids is None
           else np.asarray(ids, np.int32))
    return cls(images=images, labels=labels, ids=ids,
               original_labels=labels.copy(),
               corrupted=np.zeros(len(labels), bool))


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A classification dataset: two splits and what describes them.

  Attributes:
    name: one of `DATASETS`, e.g. "cifar10".
    train: the training `Split`.
    test: the test `Split`.
    num_classes: C; labels lie in [0, C).
    class_names: C names, index = label.
    source: where the examples came from: "generated:mnist1d",
      "local:/abs/path" or "tfds:mnist".
    pixel_mean: per-channel mean of the full training split's pixels before
      normalization (uint8 sources scaled to [0, 1]); () when unknown.
    pixel_std: per-channel std, likewise. `raw = images * pixel_std +
      pixel_mean` undoes the normalization.
    full_sizes: (train, test) sizes of the full splits the ids index (before
      any subset); () when unknown.
    holdout: the part of the training split held out of training
      (`partitions.hold_out`), or None.
    pixel_permutation: the `permutation.PixelPermutation` applied to every
      image of both splits (permuted MNIST), or None.
    identity: the `identity.DataIdentity` of the full splits the source delivered (what
      says two runs saw the same data), or None when unknown.
    draw: how one example is drawn: "image" ([H, W, C]), "line" ([L] or [L, C]) or
      "text" (token ids, shown as words of `vocabulary`); "" = by its shape.
    vocabulary: for text, token id -> string; () otherwise.
  """

  name: str
  train: Split
  test: Split
  num_classes: int
  class_names: tuple[str, ...]
  source: str
  pixel_mean: tuple[float, ...] = ()
  pixel_std: tuple[float, ...] = ()
  full_sizes: tuple[int, ...] = ()
  holdout: Split | None = None
  pixel_permutation: object | None = None  # permutation.PixelPermutation
  identity: object | None = None  # identity.DataIdentity
  draw: str = ""
  vocabulary: tuple[str, ...] = ()

  @property
  def numbering(self) -> str:
    """How ids were assigned: the source kind, "tfds", "local" or "generated".

    TFDS stores a dataset in its own fixed order (MNIST: a permutation of the
    IDX files' order), so the same id means another example in another source.
    """
    return self.source.split(":", 1)[0]

  @property
  def example_shape(self) -> tuple[int, ...]:
    """The shape of one example, e.g. (28, 28, 1), (32, 32, 3) or (40, 1)."""
    return tuple(self.train.images.shape[1:])
