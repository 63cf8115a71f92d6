"""Seeded class-stratified subsets that keep the full split's example ids."""

from __future__ import annotations

import numpy as np

from regularity_jax.data.types import DataError


def stratified_subset(labels: np.ndarray, size: int, seed: int, *,
                      what: str = "subset") -> np.ndarray:
  """Picks `size` rows, each class in proportion to its share of `labels`.

  Each class gets `size * count_c / N` rows, rounded by largest remainder
  (ties to the smaller class index), so the class counts are as near to
  stratified as integers allow. Within a class the rows are the first ones of
  a seeded permutation of that class that does not depend on `size`, so a
  larger subset (nearly always) contains a smaller one with the same seed.

  Args:
    labels: int[N], labels of the full split in canonical order.
    size: how many rows to keep, 1 <= size <= N.
    seed: the random seed.
    what: the argument's name, for messages (e.g. "train_subset").

  Returns:
    i64[size], sorted row indices into the full split (= example ids).
  """
  labels = np.asarray(labels)
  n = len(labels)
  if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
    raise DataError(f"{what}={size!r} is not an integer; pass a number of "
                    f"examples in [1, {n}] or None for the full split")
  if not 1 <= size <= n:
    raise DataError(f"{what}={size} is outside [1, {n}] (the split has {n} "
                    "examples); pass a value in that range or None for the "
                    "full split")
  if size == n:
    return np.arange(n)
  classes, counts = np.unique(labels, return_counts=True)
  exact = counts * (size / n)
  quota = np.floor(exact).astype(np.int64)
  leftover = size - quota.sum()
  # Largest remainders first; a stable sort breaks ties by class order.
  order = np.argsort(-(exact - quota), kind="stable")
  quota[order[:leftover]] += 1
  rng = np.random.default_rng(seed)
  chosen = []
  for cls, k in zip(classes, quota):
    rows = np.flatnonzero(labels == cls)
    chosen.append(rows[rng.permutation(len(rows))[:k]])
  return np.sort(np.concatenate(chosen))
