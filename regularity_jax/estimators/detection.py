"""How well a per-example score flags a set of examples (corrupted labels, noise): host side.

  auroc(scores, positives)   the area under the ROC curve: the probability that a random
                             positive scores above a random negative, ties counting one half
                             (the Mann-Whitney U statistic over n_pos * n_neg; scipy.stats)
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
  """AUROC of f[N] `scores` (higher = more likely positive; NaN scores rank lowest) for
  bool[N] `positives`. NaN when either class is empty."""
  scores = np.nan_to_num(np.asarray(scores, np.float64), nan=-np.inf)
  positives = np.asarray(positives, bool)
  n_pos, n_neg = int(positives.sum()), int((~positives).sum())
  if not n_pos or not n_neg:
    return float("nan")
  # mannwhitneyu cannot rank infinities against each other: map them past the finite range.
  finite = scores[np.isfinite(scores)]
  lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
  scores = np.where(scores == -np.inf, lo - 1.0, np.where(scores == np.inf, hi + 1.0, scores))
  u = stats.mannwhitneyu(scores[positives], scores[~positives], method="asymptotic").statistic
  return float(u / (n_pos * n_neg))
