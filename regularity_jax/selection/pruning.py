"""Static data pruning from per-example difficulty scores (host side, NumPy).

Convention: a difficulty score is f32[N] where HIGHER means HARDER (less regular, more
forgotten, lower margin...); every score is defined once, in `metrics.difficulty` (its
registry, docs/definitions.md), and read from a scores.npz by `metrics.difficulty.from_scores`.
`select` keeps a subset of positions under a pruning rule.

NaN marks an example with no score (never observed). `easiest` and `hardest` (and their
class-stratified forms) rank NaN after every scored example, so an unscored example is kept
only once every scored one is; `ccs` never keeps one; `random` ignores the scores.

Ties (`ties`): broken by a random order drawn from `seed` (the default; datasets are often
stored class by class, so position carries information), or by position (`"stable"`).

Example:
  with np.load(run_dir / "scores.npz") as z:
    score = difficulty.from_scores("forgetting", z)   # Toneva's rule over seeds
  # Toneva et al.: remove the least forgotten first, i.e. keep the hardest 70%.
  kept = pruning.select(score, fraction_kept=0.7, rule="hardest")
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from regularity_jax import registry
from regularity_jax.metrics import difficulty

RULES = ("easiest", "hardest", "random", "class_stratified_easiest", "class_stratified_hardest",
         "ccs")


def _check_rule(obj, spec):
  if not callable(obj):
    raise registry.PartError(f"pruning rule {spec!r} must be a function rule(scores, k, *, "
                             "labels, seed, ties) -> kept positions (docs/parts.md)")
  return obj


# The built-in rules are `select`'s own branches; a user rule is a function
# `rule(scores, k, *, labels, seed, ties) -> i64[K] positions` (scores f32[N], higher =
# harder, NaN unscored), named by import path (docs/parts.md).
RULE_REGISTRY = registry.Registry("pruning rule", "--config.pruning.rule",
                                  {name: name for name in RULES}, check=_check_rule)
# Scores pruning can rank by: the training-split scores of the registry, and the baseline.
SCORES = difficulty.TRAIN_SCORES + ("random",)


def score_names() -> tuple[str, ...]:
  """The scores pruning can rank by now (user statistics' scores included)."""
  return difficulty.TRAIN_SCORES + ("random",)


def score_from_table(table: Mapping[str, np.ndarray], name: str, *, seed: int = 0) -> np.ndarray:
  """Difficulty f32[N] (higher = harder) of the training rows of a scores.npz table.

  `name` is a training-split score of `metrics.difficulty` (read by `difficulty.from_scores`,
  which applies Toneva's seed rule to multi-seed tables), or "random": i.i.d. uniform in
  [0, 1) from `seed`, a baseline.
  """
  if name == "random":
    return np.random.default_rng(seed).random(len(table["train/example_id"])).astype(np.float32)
  difficulty.get(name, "train")
  return difficulty.from_scores(name, table)


def num_kept(fraction_kept: float, n: int) -> int:
  """K = round(fraction_kept * n) (Python's round: halves go to the even integer)."""
  return int(round(fraction_kept * n))


def difficulty_order(scores: np.ndarray, *, seed: int = 0, descending: bool = False,
                     ties: str = "random") -> np.ndarray:
  """Positions i64[N] from easiest to hardest (`descending`: hardest first); NaN always last.
  Ties: `metrics.difficulty.order` ("random" from `seed`, or "stable")."""
  return difficulty.order(scores, seed=seed, ties=ties, descending=descending)


def select(scores: np.ndarray, *, fraction_kept: float, rule: str,
           labels: np.ndarray | None = None, seed: int = 0, num_bins: int = 50,
           ccs_hard_cutoff: float = 0.0, ties: str = "random") -> np.ndarray:
  """Keeps K = round(fraction_kept * N) examples under a pruning rule.

  Args:
    scores: f32[N] difficulty, higher = harder; NaN = unscored (see the module docstring).
    fraction_kept: in [0, 1].
    rule:
      easiest                   the K lowest scores (removes the hardest first).
      hardest                   the K highest scores (removes the easiest first: Toneva et al.
                                remove the least forgotten; Paul et al. the lowest EL2N).
      random                    K positions uniformly at random; scores are ignored.
      class_stratified_easiest  within each class c, its share K_c of K (`class_quotas`:
      class_stratified_hardest  fraction_kept * N_c by largest remainder) of the easiest /
                                hardest examples of that class. Needs labels.
      ccs                       coverage-centric coreset selection (Zheng et al. 2023,
                                arXiv 2210.15809, Algorithm 1): drop the round(ccs_hard_cutoff
                                * N_scored) hardest scored examples, split the remaining score
                                range into `num_bins` equal-width bins, then visit the bins
                                from the smallest to the largest, giving each
                                min(its size, floor(budget left / bins left)) examples drawn
                                uniformly within it; small bins pass their leftover to larger
                                ones. NaN scores are never kept; +inf / -inf scores go to the
                                last / first bin (the width comes from the finite scores).
    labels: i32[N], for the class-stratified rules.
    seed: tie-breaking order, the `random` draw and the within-bin draw of `ccs`.
    ties: "random" (a permutation from `seed`) or "stable" (by position).
    num_bins: number of `ccs` bins.
    ccs_hard_cutoff: beta in [0, 1), the hardest fraction `ccs` drops first.

  Returns:
    i64[K] sorted kept positions.

  Raises:
    ValueError: unknown rule, fraction outside [0, 1], missing labels, or a `ccs` budget larger
    than the examples left after the cutoff.
  """
  scores = np.asarray(scores, np.float32)
  if scores.ndim != 1:
    raise ValueError(f"scores must be f32[N], got shape {scores.shape}")
  if rule not in RULES and not registry.is_import_path(rule):
    raise ValueError(f"unknown pruning rule {rule!r}; choose from {list(RULES)}")
  if not 0.0 <= fraction_kept <= 1.0:
    raise ValueError(f"fraction_kept must be in [0, 1], got {fraction_kept}")
  n = scores.shape[0]
  k = num_kept(fraction_kept, n)
  if rule not in RULES:  # a user rule
    kept = np.asarray(RULE_REGISTRY.get(rule)(scores, k, labels=labels, seed=seed, ties=ties))
    if kept.shape != (k,) or len(np.unique(kept)) != k or k and not (
        0 <= kept.min() and kept.max() < n):
      raise ValueError(f"pruning rule {rule!r} returned {kept.shape[0]} positions; it must "
                       f"return {k} distinct positions in [0, {n})")
  elif rule == "easiest":
    kept = difficulty_order(scores, seed=seed, ties=ties)[:k]
  elif rule == "hardest":
    kept = difficulty_order(scores, seed=seed, descending=True, ties=ties)[:k]
  elif rule == "random":
    kept = np.random.default_rng(seed).permutation(n)[:k]
  elif rule.startswith("class_stratified_"):
    kept = _class_stratified(scores, labels, fraction_kept, k, seed,
                             descending=rule.endswith("hardest"), ties=ties)
  else:
    kept = _ccs(scores, k, seed, num_bins, ccs_hard_cutoff, ties)
  return np.sort(kept).astype(np.int64)


def class_quotas(labels: np.ndarray, fraction_kept: float) -> dict[int, int]:
  """Per-class budgets {class: K_c} with sum K_c = round(fraction_kept * N) (largest remainder).

  Each class gets floor(fraction_kept * N_c); the rest goes one each to the classes with the
  largest fractional parts, ties to the lower class id. No class gets more than N_c.
  """
  classes, counts = np.unique(np.asarray(labels), return_counts=True)
  exact = fraction_kept * counts.astype(np.float64)
  base = np.floor(exact).astype(np.int64)
  extra = num_kept(fraction_kept, int(counts.sum())) - int(base.sum())
  order = np.lexsort((classes, -(exact - base)))
  base[order[:extra]] += 1
  return {int(c): int(q) for c, q in zip(classes, base)}


def _class_stratified(scores, labels, fraction_kept, k, seed, descending, ties):
  if labels is None:
    raise ValueError("class-stratified rules need labels: i32[N]")
  labels = np.asarray(labels)
  if labels.shape != scores.shape:
    raise ValueError(f"labels shape {labels.shape} != scores shape {scores.shape}")
  order = difficulty_order(scores, seed=seed, descending=descending, ties=ties)
  kept = []
  for c, quota in class_quotas(labels, fraction_kept).items():
    kept.append(order[labels[order] == c][:quota])
  kept = np.concatenate(kept) if kept else np.zeros((0,), np.int64)
  assert kept.shape[0] == k, (kept.shape, k)
  return kept


def ccs_bins(scores: np.ndarray, num_bins: int) -> np.ndarray:
  """Equal-width bin index i64[N] in [0, num_bins) over the finite score range.

  Bin b holds [lo + b w, lo + (b+1) w) with w = (hi - lo) / num_bins, the last bin is closed;
  -inf -> 0, +inf -> num_bins - 1; all equal scores -> bin 0. NaN entries get -1.
  """
  scores = np.asarray(scores, np.float64)
  finite = np.isfinite(scores)
  lo, hi = (scores[finite].min(), scores[finite].max()) if finite.any() else (0.0, 0.0)
  width = (hi - lo) / num_bins
  safe = np.where(finite, scores, lo)
  bins = np.floor((safe - lo) / width) if width > 0 else np.zeros_like(safe)
  bins = np.clip(bins, 0, num_bins - 1).astype(np.int64)
  bins = np.where(scores == np.inf, num_bins - 1, np.where(scores == -np.inf, 0, bins))
  return np.where(np.isnan(scores), -1, bins)


def ccs_allocation(bin_sizes: np.ndarray, budget: int) -> np.ndarray:
  """Zheng et al.'s budget split i64[num_bins]: smallest bin first, min(size, left // bins left).

  Ties between equal-sized bins go to the lower bin index. Empty bins get 0 and do not count.
  """
  sizes = np.asarray(bin_sizes, np.int64)
  alloc = np.zeros_like(sizes)
  nonempty = [int(b) for b in np.lexsort((np.arange(sizes.size), sizes)) if sizes[b] > 0]
  left = budget
  for i, b in enumerate(nonempty):
    alloc[b] = min(sizes[b], left // (len(nonempty) - i))
    left -= alloc[b]
  return alloc


def _ccs(scores, k, seed, num_bins, cutoff, ties):
  if num_bins < 1:
    raise ValueError(f"num_bins must be >= 1, got {num_bins}")
  if not 0.0 <= cutoff < 1.0:
    raise ValueError(f"ccs_hard_cutoff must be in [0, 1), got {cutoff}")
  scored = np.flatnonzero(~np.isnan(scores))
  hardest_first = difficulty_order(scores, seed=seed, descending=True, ties=ties)[:scored.size]
  candidates = np.sort(hardest_first[num_kept(cutoff, scored.size):])
  if k > candidates.size:
    raise ValueError(f"ccs cannot keep {k} examples: only {candidates.size} are scored and left "
                     f"after the hard cutoff {cutoff}")
  bins = ccs_bins(scores[candidates], num_bins)
  alloc = ccs_allocation(np.bincount(bins, minlength=num_bins), k)
  rng = np.random.default_rng(seed)
  kept = [rng.choice(candidates[bins == b], size=int(alloc[b]), replace=False)
          for b in range(num_bins) if alloc[b] > 0]
  return np.concatenate(kept) if kept else np.zeros((0,), np.int64)
