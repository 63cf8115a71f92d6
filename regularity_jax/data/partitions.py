"""Partitions of the training split: a held-out part, and AUM's threshold samples.

Like `corruption`, every choice is keyed by (seed, example id), not by position, so the same
example lands in the same part at every subset size and in every run of a comparison.

  hold_out(dataset, fraction=f)        a class-stratified f of the training split is taken out
                                       (`Dataset.holdout`): RHO-LOSS's irreducible-loss model
                                       trains on it, and every method of a comparison trains
                                       on the same rest
  hold_out(dataset, folds=K, fold=k)   fold k of a class-stratified K-fold partition is taken
                                       out: K runs give out-of-sample probabilities of every
                                       training example (cross-validation, for cleanlab)
  add_threshold_samples(dataset, s)    Pleiss et al. 2020 (arXiv 2001.10528): m = N // (C + 1)
                                       training examples get the fake extra class C; sets
                                       s = 1, 2 are disjoint (two runs flag every example)

The held-out part is taken after corruption: it comes from the same (possibly noisy)
distribution as the rest, the case RHO-LOSS is evaluated in.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from regularity_jax.data.corruption import uniform_by_id
from regularity_jax.data.types import DataError, Dataset, Split

# Random streams of one seed, apart from corruption's.
_HOLDOUT, _THRESHOLD = 101, 102
THRESHOLD_CLASS_NAME = "threshold samples (fake class)"


def take(split: Split, rows: np.ndarray) -> Split:
  """The rows `rows` (i64[k] positions, or bool[N]) of a split, in split order."""
  return Split(images=split.images[rows], labels=split.labels[rows], ids=split.ids[rows],
               original_labels=split.original_labels[rows], corrupted=split.corrupted[rows])


def holdout_mask(ids: np.ndarray, labels: np.ndarray, *, fraction: float = 0.0, folds: int = 0,
                 fold: int = 0, seed: int = 0) -> np.ndarray:
  """bool[N]: the held-out rows. Per class c (n_c rows, ranked by a per-id random number):
  the first round(fraction * n_c), or, with `folds` K >= 2, the ranks r with r % K == fold."""
  ids, labels = np.asarray(ids), np.asarray(labels)
  u = uniform_by_id(seed, _HOLDOUT, ids)
  out = np.zeros(len(ids), bool)
  for c in np.unique(labels):
    rows = np.flatnonzero(labels == c)
    ranked = rows[np.lexsort((ids[rows], u[rows]))]
    if folds >= 2:
      out[ranked[fold::folds]] = True
    else:
      out[ranked[:int(round(fraction * len(rows)))]] = True
  return out


def hold_out(dataset: Dataset, *, fraction: float = 0.0, folds: int = 0, fold: int = 0,
             seed: int = 0) -> Dataset:
  """The dataset with a held-out part of its training split moved to `dataset.holdout`.

  Args:
    dataset: the dataset (after subset and corruption).
    fraction: share of each class held out, in [0, 1) (used when folds < 2).
    folds, fold: K >= 2 holds out fold `fold` in [0, K) of a K-fold partition instead.
    seed: the partition's seed.
  """
  if folds < 2 and fraction <= 0:
    return dataset
  if folds >= 2 and not 0 <= fold < folds:
    raise DataError(f"holdout.fold={fold} must be in [0, {folds}) for holdout.folds={folds}")
  mask = holdout_mask(dataset.train.ids, dataset.train.labels, fraction=fraction, folds=folds,
                      fold=fold, seed=seed)
  if mask.all() or not mask.any():
    raise DataError(f"the holdout takes {int(mask.sum())} of {len(mask)} training examples; "
                    "choose a holdout.fraction (or folds) that leaves both parts non-empty")
  return dataclasses.replace(dataset, train=take(dataset.train, ~mask),
                             holdout=take(dataset.train, mask))


def threshold_sample_mask(ids: np.ndarray, num_classes: int, set_index: int,
                          seed: int = 0) -> np.ndarray:
  """bool[N]: threshold set `set_index` (1 or 2): the ranks [(s-1) m, s m) of a per-id random
  order of the N training ids, m = N // (C + 1), as Pleiss et al.'s `threshold_samples_set_idx`."""
  ids = np.asarray(ids)
  m = len(ids) // (num_classes + 1)
  order = np.lexsort((ids, uniform_by_id(seed, _THRESHOLD, ids)))
  out = np.zeros(len(ids), bool)
  out[order[(set_index - 1) * m:set_index * m]] = True
  return out


def add_threshold_samples(dataset: Dataset, set_index: int, seed: int = 0) -> Dataset:
  """Gives threshold set `set_index` the fake class C (the model then has C + 1 outputs).
  `original_labels` keep the true labels and `corrupted` is unchanged."""
  if set_index not in (1, 2):
    raise DataError(f"aum_threshold.set={set_index} must be 1 or 2 (0 = off)")
  c = dataset.num_classes
  mask = threshold_sample_mask(dataset.train.ids, c, set_index, seed)
  labels = np.where(mask, c, dataset.train.labels).astype(np.int32)
  return dataclasses.replace(dataset, train=dataclasses.replace(dataset.train, labels=labels),
                             num_classes=c + 1,
                             class_names=tuple(dataset.class_names) + (THRESHOLD_CLASS_NAME,))
