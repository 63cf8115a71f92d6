"""Test-set selection by regularity (Zhang et al. 2021, arXiv 2108.03913), host side, NumPy.

Two rankings of test examples come from the evaluation stream of the test split, both
defined in `metrics.difficulty` (the registry of scores):

  cbgl              CBGL: the fraction of evaluations that misclassified the example
                    (1 - `test/cumulative_correct` / `test/observations`). More = less regular.
  malgeneralizing   mal-generalizing events, `test/forgetting_events` (an evaluation correct
                    and the next one wrong) by Toneva's rule: an example never classified
                    correctly counts the number of evaluations, more than any event count.

`irregularity` returns either as a score where HIGHER = LESS REGULAR (NaN: never evaluated);
`split_regular_irregular` returns the most regular and the least regular `fraction` of the
test set, so that accuracy and calibration (`accuracy`, `expected_calibration_error`) can be
compared between them.

Not a pytest module despite its name: it is the paper's "test-sample selection".
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from regularity_jax.metrics import difficulty

BY = difficulty.TEST_SCORES


def irregularity(table: Mapping[str, np.ndarray], by: str = "cbgl") -> np.ndarray:
  """f32[N] of the test rows of a scores.npz table, higher = less regular (NaN: never
  evaluated); `by` is a test-split score of `metrics.difficulty`."""
  difficulty.get(by, "test")
  return difficulty.from_scores(by, table)


def split_regular_irregular(table: Mapping[str, np.ndarray], by: str = "cbgl",
                            fraction: float = 0.1, *, seed: int = 0,
                            ties: str = "random") -> tuple[np.ndarray, np.ndarray]:
  """The most regular and the least regular `fraction` of a split.

  Args:
    table: dict-like keyed `test/<statistic>` (scores.npz).
    by: "cbgl" or "malgeneralizing" (see the module docstring).
    fraction: in (0, 0.5]; each subset has round(fraction * N) examples.
    seed: ties (frequent: both statistics are small integers) are broken by a random order
      drawn from it (`ties="random"`), or by position (`ties="stable"`).

  Returns:
    (regular_ids, irregular_ids), each i64[K] sorted, holding `test/example_id` values when
    the table has that key and row positions otherwise. Never-evaluated examples are in
    neither.

  Raises:
    ValueError: bad `by` or `fraction`, missing keys, or fewer than 2K evaluated examples.
  """
  if not 0.0 < fraction <= 0.5:
    raise ValueError(f"fraction must be in (0, 0.5], got {fraction}")
  score = irregularity(table, by)
  n = score.shape[0]
  k = int(round(fraction * n))
  evaluated = int((~np.isnan(score)).sum())
  if 2 * k > evaluated:
    raise ValueError(f"cannot take 2 x {k} examples from {evaluated} evaluated ones")
  regular = difficulty.order(score, seed=seed, ties=ties)[:k]
  irregular = difficulty.order(score, seed=seed, ties=ties, descending=True)[:k]
  ids = np.asarray(table["test/example_id"]) if "test/example_id" in table else np.arange(n)
  return np.sort(ids[regular]).astype(np.int64), np.sort(ids[irregular]).astype(np.int64)


def accuracy(correct: np.ndarray) -> float:
  """Mean of bool[N] `correct`; NaN when N == 0."""
  correct = np.asarray(correct, bool)
  return float(correct.mean()) if correct.size else float("nan")


def expected_calibration_error(confidences: np.ndarray, correct: np.ndarray,
                               num_bins: int = 15) -> float:
  """ECE with `num_bins` equal-width confidence bins (Guo et al. 2017).

  ECE = sum_b (|B_b| / N) |accuracy(B_b) - mean confidence(B_b)|, bins (b/M, (b+1)/M], a
  confidence of exactly 0 in the first bin.

  Args:
    confidences: f32[N] in [0, 1], the probability of the predicted class.
    correct: bool[N], prediction == label.
    num_bins: M.

  Returns:
    float; NaN when N == 0.
  """
  confidences = np.asarray(confidences, np.float64)
  correct = np.asarray(correct, np.float64)
  if confidences.shape != correct.shape or confidences.ndim != 1:
    raise ValueError(f"confidences {confidences.shape} and correct {correct.shape} must both "
                     "be [N]")
  if num_bins < 1:
    raise ValueError(f"num_bins must be >= 1, got {num_bins}")
  if not confidences.size:
    return float("nan")
  bins = np.clip(np.ceil(confidences * num_bins).astype(np.int64) - 1, 0, num_bins - 1)
  # sum_b |B_b| / N |acc_b - conf_b| = sum_b |sum_B correct - sum_B confidence| / N
  gap = np.abs(np.bincount(bins, correct, num_bins) - np.bincount(bins, confidences, num_bins))
  return float(gap.sum() / confidences.size)
