"""AUM's threshold samples (Pleiss et al. 2020, arXiv 2001.10528): host side, numpy.

A run gives m = N // (C + 1) training examples the fake extra class C (`data.partitions`): they
are mislabeled by construction, so their AUM shows how low a mislabeled example's AUM is.
An example is flagged as mislabeled when its AUM is below that of more than 1% of the
threshold samples, i.e. below their 99th percentile: the rule of Pleiss et al.'s code
(`runner.py`, `AUM_WTR`: `lt(aum_i, aum_thresh).mean() > 0.01`). Two runs with disjoint
threshold sets (set 1 and set 2) flag every example: `combine` keeps, for each example, the
flags of the runs in which it was an ordinary sample, and flags it when every such run does.

  cutoff(aum, is_threshold)       f32: the 99th percentile of the threshold samples' AUM
  flags(aum, is_threshold)        f32[N]: 1 flagged, 0 not, NaN for threshold samples and
                                  examples never observed (no AUM)
  combine(flags_a, flags_b)       f32[N]: the flag over both runs (NaN where neither scored)
"""

from __future__ import annotations

import numpy as np

PERCENTILE = 99.0


def cutoff(aum: np.ndarray, is_threshold: np.ndarray) -> float:
  """The 99th percentile (numpy's linear interpolation) of the threshold samples' AUM."""
  values = np.asarray(aum, np.float64)[np.asarray(is_threshold, bool)]
  values = values[np.isfinite(values)]
  return float(np.percentile(values, PERCENTILE)) if values.size else float("nan")


def flags(aum: np.ndarray, is_threshold: np.ndarray) -> np.ndarray:
  """f32[N]: 1 where the share of threshold samples with a higher AUM exceeds 1%."""
  aum = np.asarray(aum, np.float64)
  is_threshold = np.asarray(is_threshold, bool)
  reference = np.sort(aum[is_threshold & np.isfinite(aum)])
  out = np.full(aum.shape, np.nan, np.float32)
  if not reference.size:
    return out
  scored = ~is_threshold & np.isfinite(aum)
  higher = reference.size - np.searchsorted(reference, aum[scored], side="right")
  out[scored] = (higher / reference.size > 1.0 - PERCENTILE / 100.0).astype(np.float32)
  return out


def combine(*per_run: np.ndarray) -> np.ndarray:
  """f32[N]: 1 where every run that scored the example flagged it, 0 where one did not, NaN
  where none scored it (the runs' `flags`, rows aligned)."""
  stacked = np.stack([np.asarray(f, np.float32) for f in per_run])
  scored = np.isfinite(stacked)
  any_scored = scored.any(0)
  all_flagged = np.where(scored, stacked == 1, True).all(0)
  return np.where(any_scored, all_flagged.astype(np.float32), np.nan).astype(np.float32)
