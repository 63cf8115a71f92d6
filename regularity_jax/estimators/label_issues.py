"""Label issues by confident learning (cleanlab; Northcutt et al. 2021, arXiv 1911.00068).

Confident learning needs out-of-sample predicted probabilities: usually from K-fold
cross-validation (K trainings). Turn-over dropout gives one in a single run: example i
never trained the flipped sub-network 1 - m_i, so that sub-network's softmax on i
(`train/flipped_prob`, `estimators.turnover`) is out of sample.

  find_label_issues(labels, probs)     bool[N] issues and f32[N] label quality (cleanlab's
                                       `filter.find_label_issues`, prune_by_noise_rate, and
                                       `rank.get_label_quality_scores`, self_confidence)
  turnover_probs(scores)               f32[N, C] from a turn-over run's scores.npz
  cross_validated_probs(fold_scores)   (ids, labels, probs) from the K runs of
                                       `holdout.folds=K`, folds 0..K-1 (`features.holdout`)

cleanlab is optional (`pip install -e '.[cleanlab]'`); without it these functions raise
`ImportError` with that line.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

INSTALL = "cleanlab is not installed; pip install -e '.[cleanlab]' (or pip install cleanlab)"


def _cleanlab():
  try:
    import cleanlab.filter  # pylint: disable=g-import-not-at-top
    import cleanlab.rank  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError(INSTALL) from None
  return cleanlab


def find_label_issues(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """cleanlab on i32[N] labels and f32[N, C] out-of-sample probabilities.

  Returns:
    issues: bool[N], cleanlab's `filter.find_label_issues` (filter_by='prune_by_noise_rate').
    quality: f32[N], `rank.get_label_quality_scores` (self-confidence: the probability of
      the given label; LOWER = more likely an issue).
  """
  cleanlab = _cleanlab()
  labels = np.asarray(labels, np.int64)
  probs = np.asarray(probs, np.float64)
  probs = probs / np.sum(probs, axis=1, keepdims=True)
  issues = cleanlab.filter.find_label_issues(labels, probs, filter_by="prune_by_noise_rate",
                                             n_jobs=1)
  quality = cleanlab.rank.get_label_quality_scores(labels, probs, method="self_confidence")
  return np.asarray(issues, bool), np.asarray(quality, np.float32)


def turnover_probs(scores: Mapping[str, np.ndarray]) -> np.ndarray:
  """f32[N, C]: the flipped sub-network's probabilities of a turn-over run (mean over seeds
  when the file holds several: [K, N, C])."""
  probs = np.asarray(scores["train/flipped_prob"], np.float32)
  return probs.mean(0) if probs.ndim == 3 else probs


def cross_validated_probs(fold_scores: Sequence[Mapping[str, np.ndarray]]
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The out-of-sample probabilities of every example from the scores of K fold runs.

  Returns (ids i32[N], labels i32[N], probs f32[N, C]) sorted by id. Raises ValueError when
  an id is held out twice or the runs' classes differ.
  """
  ids = np.concatenate([np.asarray(s["holdout/example_id"]) for s in fold_scores])
  labels = np.concatenate([np.asarray(s["holdout/label"]) for s in fold_scores])
  probs = [np.asarray(s["holdout/prob"], np.float32) for s in fold_scores]
  probs = [p.mean(0) if p.ndim == 3 else p for p in probs]
  if len({p.shape[1] for p in probs}) != 1:
    raise ValueError("the fold runs have different numbers of classes")
  if len(np.unique(ids)) != len(ids):
    raise ValueError("an example is held out by two fold runs; use folds 0..K-1 of one "
                     "holdout.folds=K and one holdout.seed")
  order = np.argsort(ids)
  return ids[order].astype(np.int32), labels[order].astype(np.int32), np.concatenate(probs)[order]
