"""The statistics of the study reports, from scipy (host side).

  kendall_tau_b(x, y)           Kendall's tau-b (scipy.stats.kendalltau), NaN pairs dropped
  permutation_p_value(x, y)     its two-sided p-value against random pairings
                                (scipy.stats.permutation_test)
  spearman(x, y)                Spearman's rank correlation (scipy.stats.spearmanr)
"""

from __future__ import annotations

from typing import Sequence
import warnings

import numpy as np
from scipy import stats


def _finite_pairs(x, y):
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.shape != y.shape or x.ndim != 1:
    raise ValueError(f"x and y must be 1-D of one length, got {x.shape} and {y.shape}")
  ok = np.isfinite(x) & np.isfinite(y)
  return x[ok], y[ok]


def _tau(x, y) -> float:
  with warnings.catch_warnings():  # a constant input: scipy warns and returns NaN
    warnings.simplefilter("ignore")
    return float(stats.kendalltau(x, y, variant="b").statistic)


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
  """Kendall's tau-b of two equally long sequences; pairs with a NaN are dropped. NaN when a
  sequence is constant or shorter than 2."""
  x, y = _finite_pairs(x, y)
  return _tau(x, y) if len(x) >= 2 else float("nan")


def permutation_p_value(x: Sequence[float], y: Sequence[float], *,
                        num_permutations: int = 10000, seed: int = 0) -> float:
  """Two-sided p-value of tau-b(x, y) under random pairings of x and y (exact when n! is at
  most `num_permutations`, else that many random pairings from `seed`). NaN when tau is."""
  x, y = _finite_pairs(x, y)
  if len(x) < 2 or not np.isfinite(_tau(x, y)):
    return float("nan")
  result = stats.permutation_test((x, y), _tau, permutation_type="pairings",
                                  n_resamples=num_permutations, alternative="two-sided",
                                  rng=np.random.default_rng(seed))
  return float(result.pvalue)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
  """Spearman's rank correlation (ties share their average rank)."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    return float(stats.spearmanr(x, y).statistic)
