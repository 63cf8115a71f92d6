"""Which examples a run report shows: per class, the k hardest and easiest by each score.

Every ranking goes through the score registry (`metrics.difficulty`) and its tie rule, so a
grid shows exactly what pruning or weighting by that score would remove first:

  members  = positions of the split whose label (the label the run trained with) is c
  values   = difficulty.from_scores(name, scores)[members]
  hardest  = members[difficulty.order(values, seed=seed, descending=True)[:k]]
  easiest  = members[difficulty.order(values, seed=seed)[:k]]

Higher is harder for every score, NaN (unscored) is last in both orders, and equal values are
broken by the random permutation of `seed` over the class's members (`ties="random"`): the
unforgettable examples of a class are a random draw among those with zero forgetting events,
not the first ones in storage order. tests/test_report.py recomputes every grid this way.

The data map regions (Swayamdipta et al. 2020) are chosen by the same functions, over all
classes: easy-to-learn the k highest confidence (top left of the map: high confidence forces
low variability), ambiguous the k highest variability (right), hard-to-learn the k lowest
confidence (bottom left).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from regularity_jax.metrics import difficulty

ENDS = ("hardest", "easiest")
REGIONS = ("easy-to-learn", "ambiguous", "hard-to-learn")
_EVENT_SCORES = ("forgetting", "malgeneralizing")


def end_titles(score: str) -> dict[str, str]:
  """How the page and the figures name the two ends of a score's ranking."""
  if score in _EVENT_SCORES:
    return {"hardest": "most forgotten", "easiest": "unforgettable"}
  return {"hardest": "highest (hardest)", "easiest": "lowest (easiest)"}


def class_name(class_names: Sequence[str], label: int) -> str:
  """The name of `label`, or the label itself past the dataset's names (a fake class)."""
  return class_names[label] if 0 <= label < len(class_names) else str(label)


@dataclasses.dataclass(frozen=True)
class Grid:
  """One grid of a report: k examples of one class at one end of one score's ranking.

  Attributes:
    split: "train" or "test".
    score: a registered score name, or "data_map" for a region of the data map.
    label: the class (the label the run used), or -1 for a grid over all classes.
    end: "hardest" or "easiest" (a score grid), or a data map region.
    rows: i64[<=k] positions in the split's rows of scores.npz, in display order.
    values: f32[<=k] the score of each shown example (for data map regions: the confidence).
  """
  split: str
  score: str
  label: int
  end: str
  rows: np.ndarray
  values: np.ndarray

  @property
  def key(self) -> str:
    return f"{self.split}/{self.score}/{self.label}/{self.end}"


def computable(scores: Mapping[str, np.ndarray], split: str) -> dict[str, np.ndarray]:
  """{name: f32[N]} of the registered scores of `split` that `scores` (a scores.npz table) can
  compute, in the registry's order, leaving out scores that are NaN everywhere."""
  names = difficulty.TRAIN_SCORES if split == "train" else difficulty.TEST_SCORES
  found = {}
  for name in names:
    try:
      values = difficulty.from_scores(name, scores)
    except ValueError:
      continue
    if np.any(np.isfinite(values)):
      found[name] = values
  return found


def available_scores(scores: Mapping[str, np.ndarray], split: str) -> list[str]:
  """The names of `computable(scores, split)`."""
  return list(computable(scores, split))


def score_grids(scores: Mapping[str, np.ndarray], split: str, names: Sequence[str], *,
                k: int = 16, seed: int = 0,
                values: Mapping[str, np.ndarray] | None = None) -> list[Grid]:
  """Per score and class, the k hardest and k easiest examples (see the module docstring).

  Args:
    scores: a scores.npz table (`<split>/<key>` columns).
    split: "train" or "test".
    names: registered scores of that split.
    k: examples per grid.
    seed: the tie-breaking permutation.
    values: the scores already computed (`computable`); computed here when None.

  Returns:
    Grids in the order score, class, end.
  """
  labels = np.asarray(scores[f"{split}/label"])
  grids = []
  for name in names:
    score_values = (values[name] if values is not None
                    else difficulty.from_scores(name, scores))
    for label in np.unique(labels):
      members = np.flatnonzero(labels == label)
      for end in ENDS:
        ranked = members[difficulty.order(score_values[members], seed=seed,
                                          descending=end == "hardest")[:k]]
        grids.append(Grid(split, name, int(label), end, ranked, score_values[ranked]))
  return grids


def data_map_grids(scores: Mapping[str, np.ndarray], *, k: int = 16, seed: int = 0,
                   split: str = "train") -> list[Grid]:
  """The k examples of each data map region over all classes (module docstring); [] when the
  run did not track confidence."""
  conf_key, var_key = f"{split}/confidence", f"{split}/variability"
  if conf_key not in scores or var_key not in scores:
    return []
  conf = np.asarray(scores[conf_key], np.float32)
  var = np.asarray(scores[var_key], np.float32)
  scored = np.isfinite(conf) & np.isfinite(var)
  if not np.any(scored):
    return []
  everyone = np.flatnonzero(scored)
  picks = {
      "easy-to-learn": everyone[difficulty.order(conf[everyone], seed=seed, descending=True)[:k]],
      "ambiguous": everyone[difficulty.order(var[everyone], seed=seed, descending=True)[:k]],
      "hard-to-learn": everyone[difficulty.order(conf[everyone], seed=seed)[:k]],
  }
  return [Grid(split, "data_map", -1, region, picks[region], conf[picks[region]])
          for region in REGIONS]
