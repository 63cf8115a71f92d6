"""Static data pruning from per-example difficulty scores (host side, NumPy).

Convention: a difficulty score is f32[N] where HIGHER means HARDER (less regular, more
forgotten, lower margin...). `score_from_table` turns the columns of a scores.npz table into
such a score; `select` keeps a subset of positions under a pruning rule.

NaN marks an example with no score (never observed). `easiest` and `hardest` (and their
class-stratified forms) rank NaN after every scored example, so an unscored example is kept
only once every scored one is; `ccs` never keeps one; `random` ignores the scores. +inf is a
valid score (e.g. never-learned examples under `forgetting`: the hardest of all).

Ties are broken by a random order drawn from `seed`, never by position (datasets are often
stored class by class).

Example:
  with np.load(run_dir / "scores.npz") as z:
    score = pruning.score_from_table(z, "forgetting")
  # Toneva et al.: drop the 30% most forgotten.
  kept = pruning.select(score, fraction_kept=0.7, rule="easiest")
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

RULES = ("easiest", "hardest", "random", "class_stratified_easiest", "class_stratified_hardest",
         "ccs")

# name -> (keys it needs, one-line description of the convention)
SCORES = {
    "forgetting": (("forgetting_events", "never_learned"),
                   "forgetting events; never-learned examples +inf (Toneva et al. 2019)"),
    "cbtl": (("cumulative_correct",),
             "minus cumulative_correct (CBTL, Zhang et al. 2021): fewer correct = harder"),
    "aum": (("aum",), "minus the area under the margin (Pleiss et al. 2020)"),
    "el2n": (("mean_el2n",), "mean EL2N over presentations (losses kernel; Paul et al. 2021)"),
    "grand": (("grand",), "GraNd (Paul et al. 2021)"),
    "memorization": (("memorization",), "turn-over memorization (Liu et al. 2021)"),
    "random": ((), "i.i.d. uniform in [0, 1) from `seed` (a baseline)"),
}


def score_from_table(table: Mapping[str, np.ndarray], name: str, split: str = "train", *,
                     seed: int = 0) -> np.ndarray:
  """Difficulty score f32[N] (higher = harder) from a scores.npz table.

  Args:
    table: dict-like keyed `<split>/<statistic>` (a loaded scores.npz or `collect_scores`).
    name: one of `SCORES`:
      forgetting    `forgetting_events`, +inf where `never_learned` (Toneva ranks them as the
                    most forgotten, never as 0 events).
      cbtl          `-cumulative_correct`.
      aum           `-aum`.
      el2n          `el2n` if the table has it, else `mean_el2n` (what the loop writes).
      grand, memorization   the statistic itself.
      random        uniform in [0, 1), from `seed`.
    split: the key prefix, "train" or "test".
    seed: only for `random`.

  Returns:
    f32[N]. For `forgetting` and `cbtl`, examples with `<split>/observations == 0` (when that
    key is present) are NaN, so that no rule mistakes an unseen example for an easy one; the
    float statistics (aum, el2n, ...) keep the NaN they already carry.

  Raises:
    ValueError: unknown name, or a key missing from the table (the message lists the table).
  """
  if name not in SCORES:
    raise ValueError(f"unknown score {name!r}; choose from {sorted(SCORES)}")
  keys, _ = SCORES[name]
  present = sorted(table.keys())
  prefix = f"{split}/"
  if name == "el2n" and prefix + "el2n" in table:  # a single-shot EL2N column wins if present
    keys = ("el2n",)
  missing = [prefix + k for k in keys if prefix + k not in table]
  if missing:
    raise ValueError(f"score {name!r} needs {missing}, the table has {present}")
  if name == "random":
    lengths = {np.asarray(table[k]).shape[0] for k in present if k.startswith(prefix)}
    if len(lengths) != 1:
      raise ValueError(f"score 'random' needs the {split!r} columns to agree on one length, "
                       f"found lengths {sorted(lengths)} in {present}")
    return np.random.default_rng(seed).random(lengths.pop()).astype(np.float32)
  if name == "forgetting":
    score = _column(table, prefix, "forgetting_events").astype(np.float32)
    score = np.where(_column(table, prefix, "never_learned").astype(bool), np.inf, score)
  elif name == "cbtl":
    score = -_column(table, prefix, "cumulative_correct").astype(np.float32)
  elif name == "aum":
    score = -_column(table, prefix, "aum").astype(np.float32)
  elif name == "el2n":
    score = _column(table, prefix, keys[0]).astype(np.float32)
  else:
    score = _column(table, prefix, name).astype(np.float32)
  if name in ("forgetting", "cbtl") and prefix + "observations" in table:
    score = np.where(_column(table, prefix, "observations") > 0, score, np.nan)
  return score.astype(np.float32)


def _column(table, prefix, key):
  return np.asarray(table[prefix + key])


def num_kept(fraction_kept: float, n: int) -> int:
  """K = round(fraction_kept * n) (Python's round: halves go to the even integer)."""
  return int(round(fraction_kept * n))


def difficulty_order(scores: np.ndarray, *, seed: int = 0, descending: bool = False) -> np.ndarray:
  """Positions i64[N] from easiest to hardest (`descending`: hardest first); NaN always last.

  Ties are broken by a random permutation drawn from `seed`.
  """
  scores = np.asarray(scores, np.float64)
  nan = np.isnan(scores)
  value = np.where(nan, 0.0, -scores if descending else scores)
  tiebreak = np.random.default_rng(seed).permutation(scores.shape[0])
  return np.lexsort((tiebreak, value, nan))  # the last key is the primary one


def select(scores: np.ndarray, *, fraction_kept: float, rule: str,
           labels: np.ndarray | None = None, seed: int = 0, num_bins: int = 50,
           ccs_hard_cutoff: float = 0.0) -> np.ndarray:
  """Keeps K = round(fraction_kept * N) examples under a pruning rule.

  Args:
    scores: f32[N] difficulty, higher = harder; NaN = unscored (see the module docstring).
    fraction_kept: in [0, 1].
    rule:
      easiest                   the K lowest scores (Toneva: drop the most forgotten).
      hardest                   the K highest scores (Paul et al., Sorscher et al. for large data).
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
  if rule not in RULES:
    raise ValueError(f"unknown pruning rule {rule!r}; choose from {list(RULES)}")
  if not 0.0 <= fraction_kept <= 1.0:
    raise ValueError(f"fraction_kept must be in [0, 1], got {fraction_kept}")
  n = scores.shape[0]
  k = num_kept(fraction_kept, n)
  if rule == "easiest":
    kept = difficulty_order(scores, seed=seed)[:k]
  elif rule == "hardest":
    kept = difficulty_order(scores, seed=seed, descending=True)[:k]
  elif rule == "random":
    kept = np.random.default_rng(seed).permutation(n)[:k]
  elif rule.startswith("class_stratified_"):
    kept = _class_stratified(scores, labels, fraction_kept, k, seed,
                             descending=rule.endswith("hardest"))
  else:
    kept = _ccs(scores, k, seed, num_bins, ccs_hard_cutoff)
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


def _class_stratified(scores, labels, fraction_kept, k, seed, descending):
  if labels is None:
    raise ValueError("class-stratified rules need labels: i32[N]")
  labels = np.asarray(labels)
  if labels.shape != scores.shape:
    raise ValueError(f"labels shape {labels.shape} != scores shape {scores.shape}")
  order = difficulty_order(scores, seed=seed, descending=descending)
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


def _ccs(scores, k, seed, num_bins, cutoff):
  if num_bins < 1:
    raise ValueError(f"num_bins must be >= 1, got {num_bins}")
  if not 0.0 <= cutoff < 1.0:
    raise ValueError(f"ccs_hard_cutoff must be in [0, 1), got {cutoff}")
  scored = np.flatnonzero(~np.isnan(scores))
  hardest_first = difficulty_order(scores, seed=seed, descending=True)[:scored.size]
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
