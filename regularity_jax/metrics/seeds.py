"""Combining the summary tables of several seeds (host side, NumPy).

`--config.num_seeds=K` trains K replicas in one program (`training.replicas`); replica k
computes exactly what a single run with `--config.seed=seed+k` computes. Their tables combine
here.

Combining the statistics of seeds (Toneva et al. 2019 report statistics "summed over 5 seeds"):

  forgetting_events, learning_events, cumulative_correct, observations   summed over seeds
  forgetting_score   Toneva's ranking score, summed (`metrics.difficulty`: per seed the
                     forgetting count, or the seed's number of presentations where the example
                     was never learned). Rankings read this column, never forgetting_events.
  unforgettable      learned in every seed and never forgotten in any (so the combined
                     forgetting count is 0 and no seed left it unlearned)
  never_learned      never learned in any seed (observed at least once)
  first_learned      the mean over the seeds that learned it (-1 if none did)
  first_forgotten    the mean over the seeds that forgot it (-1 if none did); the per-epoch
                     unforgettable curve combines the per-seed columns (`unforgettable_by_epoch`)
  every float (AUM, confidence, losses, margins, turn-over scores...)   mean over seeds
  a user statistic's score key   by its `seeds` rule ("sum": summed, `USER_SUMMED`)

Scores (higher = harder) combine by their own rule in `metrics.difficulty.combine`.
"""

from __future__ import annotations

from typing import Mapping
import warnings

import numpy as np

from regularity_jax.metrics import difficulty

SUMMED = ("forgetting_events", "learning_events", "cumulative_correct", "observations",
          "turnover_observations") + tuple(
              k for k, rule in difficulty.STORED_COLUMNS.items() if rule == "sum")


# Score keys of user statistics whose seeds combine by "sum" (`metrics.statistics`).
USER_SUMMED: set[str] = set()


def combine(per_seed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Summary tables with a leading seed axis ([K, N] arrays) -> one combined [N] table."""
  out = {}
  for key, value in per_seed.items():
    value = np.asarray(value)
    if key == "dropped":
      out[key] = value.sum(0).astype(value.dtype)
    elif key in SUMMED or key in USER_SUMMED:
      out[key] = value.sum(0).astype(value.dtype)
    elif key == "unforgettable":
      out[key] = value.all(0)
    elif key == "never_learned":
      out[key] = value.all(0)
    elif key in ("first_learned", "first_forgotten"):
      learned = value >= 0
      mean = np.where(learned, value, 0).sum(0) / np.maximum(learned.sum(0), 1)
      out[key] = np.where(learned.any(0), mean, -1.0).astype(np.float32)
    elif value.dtype == bool:
      out[key] = value.mean(0).astype(np.float32)
    else:
      with warnings.catch_warnings():  # all-NaN columns (never observed) stay NaN, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        out[key] = np.nanmean(value.astype(np.float64), axis=0).astype(np.float32)
  return out


def unforgettable_by_epoch(first_learned: np.ndarray, first_forgotten: np.ndarray,
                           num_epochs: int) -> np.ndarray:
  """Fraction of examples unforgettable over every seed after each epoch, by Toneva's rule.

  With one presentation per epoch (observation index = epoch index), an example is
  unforgettable in a seed after e epochs when it was learned by then (0 <= first_learned <= e-1)
  and not forgotten by then (first_forgotten == -1 or first_forgotten > e-1); over the seeds,
  only if so in every seed (`combine`'s "unforgettable").

  Args:
    first_learned: i32[K, N] per seed (`metrics.forgetting`), -1 = never learned.
    first_forgotten: i32[K, N] per seed, -1 = never forgotten.
    num_epochs: E.

  Returns:
    f64[E]: entry e-1 is the fraction after e epochs. At the last epoch of a run presenting
    every example once per epoch it equals the mean of the combined final `unforgettable`.
  """
  fl = np.asarray(first_learned)[:, :, None]
  ff = np.asarray(first_forgotten)[:, :, None]
  seen = np.arange(num_epochs)[None, None, :]  # e - 1 for e = 1..E
  per_seed = (fl >= 0) & (fl <= seen) & ((ff < 0) | (ff > seen))
  return per_seed.all(0).mean(0)
