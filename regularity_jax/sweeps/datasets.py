"""Derived datasets of the studies, written as `.npz` files the loader reads back.

The training loop has no field to keep a list of training ids; a study that retrains on part
of the data (without the k most memorized examples, a long-tailed class profile, ...) writes
that part as `<dir>/<dataset name>.npz` and points the sub-run's `data_dir` at `<dir>`
(`regularity_jax.data.local_files` loads `NAME.npz` first). The file holds

  x_train f32[N, ...], y_train i32[N]   the kept training examples, labels as the source run
                                        used them (corrupted labels stay corrupted)
  x_test f32[T, ...], y_test i32[T]     the test split, unchanged
  train_ids i32[N], test_ids i32[T]     the ids of those examples in the source dataset
  train_original_labels i32[N]          their clean labels

Images are the source dataset's normalized float32 pixels; the loader normalizes again with
the kept split's mean and std (nearly the identity). The loader renumbers the kept examples
0..N-1 (its ids index the npz rows); `train_ids` maps them back. That is enough for
retraining, where only test numbers are compared.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from regularity_jax import data
from regularity_jax.sweeps.errors import StudyError


def write_subset_npz(dataset: data.Dataset, keep_ids: np.ndarray,
                     directory: str | os.PathLike) -> pathlib.Path:
  """Writes the training examples of `dataset` whose ids are in `keep_ids` (plus the whole
  test split) to `directory/<dataset.name>.npz`; returns `directory` (the new data_dir).

  Rows keep the order of `dataset.train`. If the file exists it must hold the same ids and
  labels (then it is reused); otherwise StudyError, and nothing is overwritten.
  """
  directory = pathlib.Path(directory)
  keep_ids = np.asarray(keep_ids)
  rows = np.flatnonzero(np.isin(dataset.train.ids, keep_ids))
  if len(rows) != len(np.unique(keep_ids)):
    missing = np.setdiff1d(keep_ids, dataset.train.ids)
    raise StudyError(f"{len(missing)} requested ids are not training examples of "
                     f"{dataset.name} (first: {missing[:5].tolist()})")
  if len(rows) == 0:
    raise StudyError("write_subset_npz: no training example kept; keep at least one")
  arrays = {
      "x_train": dataset.train.images[rows].astype(np.float32),
      "y_train": dataset.train.labels[rows].astype(np.int32),
      "x_test": dataset.test.images.astype(np.float32),
      "y_test": dataset.test.labels.astype(np.int32),
      "train_ids": dataset.train.ids[rows].astype(np.int32),
      "test_ids": dataset.test.ids.astype(np.int32),
      "train_original_labels": dataset.train.original_labels[rows].astype(np.int32),
  }
  path = directory / f"{dataset.name}.npz"
  if path.exists():
    with np.load(path) as z:
      same = all(k in z.files and np.array_equal(z[k], arrays[k])
                 for k in ("train_ids", "y_train", "test_ids", "y_test"))
    if not same:
      raise StudyError(f"{path} already holds another subset; nothing was overwritten: use a "
                       "new study workdir (or remove that file yourself)")
    return directory
  directory.mkdir(parents=True, exist_ok=True)
  tmp = directory / f".{dataset.name}.tmp.npz"
  np.savez_compressed(tmp, **arrays)
  os.replace(tmp, path)
  return directory


def read_subset_ids(directory: str | os.PathLike, name: str) -> np.ndarray:
  """The source-dataset ids of the training examples in `directory/<name>.npz`."""
  with np.load(pathlib.Path(directory) / f"{name}.npz") as z:
    return z["train_ids"]


def long_tail_ids(labels: np.ndarray, ids: np.ndarray, imbalance_ratio: float,
                  seed: int = 0) -> np.ndarray:
  """Ids of a long-tailed subsample: class c (in index order) keeps
  `n_c * imbalance_ratio ** (-c / (C - 1))` of its n_c examples (at least one), so the first
  class keeps all and the last 1/imbalance_ratio (Cui et al. 2019's exponential profile).

  Args:
    labels: int[N] labels of the training split; ids: int[N] their example ids.
    imbalance_ratio: size of the largest class over the smallest, >= 1.
    seed: which examples of a class are kept.

  Returns:
    The kept ids, sorted.
  """
  if imbalance_ratio < 1:
    raise StudyError(f"imbalance_ratio={imbalance_ratio} must be >= 1")
  labels, ids = np.asarray(labels), np.asarray(ids)
  classes = np.unique(labels)
  rng = np.random.default_rng(seed)
  kept = []
  for rank, c in enumerate(classes):
    members = ids[labels == c]
    share = imbalance_ratio ** (-rank / max(len(classes) - 1, 1))
    n = max(1, int(round(len(members) * share)))
    kept.append(rng.permutation(members)[:n])
  return np.sort(np.concatenate(kept))
