"""The registry of per-example scores: one definition of each, used by everything that ranks.

A *score* is f32[N] where HIGHER means HARDER (less regular, more forgotten, lower margin,
more memorized...) and NaN means unscored (the example was never observed). Pruning, weighting,
noise-aware prioritization, the studies and the notebooks all read scores through this module;
docs/definitions.md gives the same table with the papers' definitions.

  name                 split  reads                            higher = harder because   seeds
  forgetting           train  forgetting_events, never_learned  more forgetting events     sum
                              (presentation stream)            (Toneva et al. 2019)
  cbtl                 train  mean_correct (presentations)     fewer correct presentations mean
  aum                  train  aum (presentations)              -AUM: lower margin          mean
  el2n                 train  mean_el2n (presentations)        larger error norm           mean
  loss                 train  mean_loss (presentations)        larger loss                 mean
  confidence           train  confidence (presentations)       -confidence                 mean
  variability          train  variability (presentations)      more variable (ambiguous)   mean
  grand                train  grand (a single-pass column)     larger gradient norm        mean
  normalized_margin    train  normalized_margin (last eval)    -margin / network norm      mean
  memorization         train  memorization (turn-over, 0/1)    more memorized              mean
  memorization_loss    train  memorization_loss (turn-over)    more memorized              mean
  generalization_error train  generalization_error (turn-over) larger loss of a model that mean
                                                               never trained on it
  aum_flag             train  aum_flag (two threshold runs)    flagged as mislabeled       mean
                                                               (Pleiss et al. 2020)
  cleanlab_turnover    train  label_quality_turnover           1 - cleanlab label quality  mean
                              (turn-over + cleanlab)           (confident learning)
  cbgl                 test   mean_correct (evaluations)       fewer correct evaluations   mean
  malgeneralizing      test   forgetting_events, never_learned  more mal-generalizing      sum
                              (evaluation stream)              events

Toneva's seed rule (`forgetting`, `mal_generalizing`; their `order_examples_by_forgetting`):
per seed, the example's forgetting count, or, in a seed in which it was never learned, the
number of presentations of that seed (the largest observation count of any example in that
seed's table: Toneva's `npresentations`, the number of epochs when every example is presented
once per epoch; it is above any forgetting count the seed can produce, since P presentations
hold at most P / 2 forgetting events); summed over seeds. An example unobserved in a seed is
NaN. The combined value is stored as its own column, `<split>/forgetting_score`, next to the
summed event count `<split>/forgetting_events`.

`cbtl` and `cbgl` use the fraction of observations that were wrong, `1 - mean_correct`: the
cumulative binary loss per observation. It ranks exactly like `-cumulative_correct` when every
example has the same number of observations, and stays fair when they differ (pruning,
reduction, Selective-Backprop, importance sampling).

Ties: `order` sorts by score with NaN last; equal scores are broken by a random permutation
from `seed` (`ties="random"`, the default: datasets are often stored class by class, so
position carries information) or by position (`ties="stable"`, what a stable argsort does).

A leaf module: numpy and jax.numpy only. Every function takes numpy or jax arrays; scores of
jax arrays stay on the device (so a jitted step can call `score`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

SPLITS = ("train", "test")
SEED_RULES = ("sum", "mean")
TIES = ("random", "stable")
SOURCES = ("forgetting", "cumulative", "margins", "confidence", "losses", "turnover", "grand",
           "engine")


def _xp(x):
  return jnp if isinstance(x, jax.Array) else np


def _f32(x):
  return _xp(x).asarray(x).astype(_xp(x).float32)


def _toneva(table):
  """Toneva's per-seed forgetting count (see the module docstring)."""
  events = _f32(table["forgetting_events"])
  xp = _xp(events)
  observations = xp.asarray(table["observations"])
  presentations = xp.max(observations, initial=0).astype(xp.float32)
  value = xp.where(xp.asarray(table["never_learned"]).astype(bool), presentations, events)
  return xp.where(observations > 0, value, xp.nan).astype(xp.float32)


def _negated(key):
  return lambda table: -_f32(table[key])


def _itself(key):
  return lambda table: _f32(table[key])


def _one_minus(key):
  return lambda table: 1.0 - _f32(table[key])


def _wrong_fraction(table):
  return (1.0 - _f32(table["mean_correct"]))


@dataclasses.dataclass(frozen=True)
class Score:
  """One registered score.

  Attributes:
    name: the name configs and functions use.
    definition: one line, higher = harder.
    split: the split it ranks, "train" or "test".
    stream: the prefix of its statistics inside the split's columns of scores.npz: "" for the
      presentation stream of the training split and for the evaluation stream of the test
      split, "eval_" for the evaluation stream of the training split.
    needs: the statistics (summary-table keys) it reads.
    source: what provides them: a metric kernel (`metrics.KERNELS`), "turnover" (the
      turn-over estimator), "grand" (a single-pass column a study adds) or "engine" (written
      into scores.npz at the end of a run only).
    seeds: how values of several seeds combine, "sum" or "mean".
    reference: the paper.
    stored_as: the scores.npz column that holds the (seed-combined) score itself, or "".
    fn: one seed's summary table -> f32[N], higher = harder.
  """
  name: str
  definition: str
  split: str
  stream: str
  needs: tuple[str, ...]
  source: str
  seeds: str
  reference: str
  fn: Callable
  stored_as: str = ""

  @property
  def running(self) -> bool:
    """Whether a run can compute it from its running state (a kernel or turn-over)."""
    return self.source not in ("grand", "engine")


_TONEVA = "Toneva et al. 2019, arXiv 1812.05159"
_ZHANG = "Zhang et al. 2021, arXiv 2108.03913"
_PAUL = "Paul et al. 2021, arXiv 2107.07075"
_SWAYAMDIPTA = "Swayamdipta et al. 2020, arXiv 2009.10795"
_LIU = "Liu, Lin, Jaggi 2021, arXiv 2112.08798"

_ALL = (
    Score("forgetting", "forgetting events; a seed that never learned the example counts its "
          "number of presentations; summed over seeds (Toneva's rule)", "train", "",
          ("forgetting_events", "never_learned", "observations"), "forgetting", "sum", _TONEVA,
          _toneva, stored_as="forgetting_score"),
    Score("cbtl", "fraction of presentations misclassified, 1 - cumulative_correct / "
          "observations (CBTL per presentation)", "train", "", ("mean_correct",), "cumulative",
          "mean", _ZHANG, _wrong_fraction),
    Score("aum", "minus the area under the margin: mean logit margin over presentations, "
          "negated", "train", "", ("aum",), "margins", "mean",
          "Pleiss et al. 2020, arXiv 2001.10528", _negated("aum")),
    Score("el2n", "mean EL2N ||softmax - onehot||_2 over presentations", "train", "",
          ("mean_el2n",), "losses", "mean", _PAUL, _itself("mean_el2n")),
    Score("loss", "mean cross-entropy over presentations", "train", "", ("mean_loss",), "losses",
          "mean", "Hu et al. 2021, arXiv 2107.07741", _itself("mean_loss")),
    Score("confidence", "minus the confidence: mean softmax probability of the label over "
          "presentations, negated", "train", "", ("confidence",), "confidence", "mean",
          _SWAYAMDIPTA, _negated("confidence")),
    Score("variability", "std over presentations of the label's softmax probability (high = "
          "ambiguous)", "train", "", ("variability",), "confidence", "mean", _SWAYAMDIPTA,
          _itself("variability")),
    Score("grand", "GraNd, the per-example gradient norm at a checkpoint", "train", "",
          ("grand",), "grand", "mean", _PAUL, _itself("grand")),
    Score("normalized_margin", "minus the normalized margin of the last evaluation (logit "
          "margin / network norm)", "train", "", ("normalized_margin",), "engine", "mean",
          "Banburski et al. 2021, arXiv 2107.10199", _negated("normalized_margin")),
    Score("memorization", "turn-over memorization, 0/1 form correct(i; m_i) - correct(i; "
          "1 - m_i), latest evaluation", "train", "", ("memorization",), "turnover", "mean",
          _LIU, _itself("memorization")),
    Score("memorization_loss", "turn-over memorization, loss form L(i; 1 - m_i) - L(i; m_i), "
          "latest evaluation", "train", "", ("memorization_loss",), "turnover", "mean", _LIU,
          _itself("memorization_loss")),
    Score("generalization_error", "loss on the example of the flipped sub-network 1 - m_i, "
          "which never trained on it, latest evaluation", "train", "",
          ("generalization_error",), "turnover", "mean", "Zhou et al. 2023, arXiv 2301.04850",
          _itself("generalization_error")),
    Score("aum_flag", "AUM threshold flag: 1 when the AUM is below the 99th percentile of "
          "the fake-class threshold samples' AUM (two runs with disjoint threshold sets)",
          "train", "", ("aum_flag",), "engine", "mean", "Pleiss et al. 2020, arXiv 2001.10528",
          _itself("aum_flag")),
    Score("cleanlab_turnover", "1 - cleanlab's label quality (self-confidence) of the "
          "turn-over flipped sub-network's out-of-sample probabilities", "train", "",
          ("label_quality_turnover",), "engine", "mean",
          "Northcutt et al. 2021, arXiv 1911.00068", _one_minus("label_quality_turnover")),
    Score("cbgl", "fraction of evaluations misclassified, 1 - cumulative_correct / "
          "observations (CBGL per evaluation)", "test", "", ("mean_correct",), "cumulative",
          "mean", _ZHANG, _wrong_fraction),
    Score("malgeneralizing", "mal-generalizing events (forgetting events over evaluations); "
          "never generalized counts the number of evaluations; summed over seeds", "test", "",
          ("forgetting_events", "never_learned", "observations"), "forgetting", "sum", _ZHANG,
          _toneva, stored_as="forgetting_score"),
)

SCORES: dict[str, Score] = {s.name: s for s in _ALL}
NAMES = tuple(SCORES)
TRAIN_SCORES = tuple(s.name for s in _ALL if s.split == "train")
TEST_SCORES = tuple(s.name for s in _ALL if s.split == "test")
# Stored score columns (un-prefixed) -> how they combine over seeds.
STORED_COLUMNS = {s.stored_as: s.seeds for s in _ALL if s.stored_as}


def get(name: str, split: str | None = None) -> Score:
  """The registered score `name` (of `split`, when given); ValueError listing the names."""
  choices = NAMES if split is None else tuple(s for s in NAMES if SCORES[s].split == split)
  if name not in choices:
    where = "" if split is None else f" of the {split} split"
    raise ValueError(f"unknown score {name!r}{where}; choose one of {', '.join(choices)}")
  return SCORES[name]


def score(name: str, table: Mapping[str, object]) -> jnp.ndarray | np.ndarray:
  """One seed's score f32[N] (higher = harder, NaN = unscored) from a summary table.

  Args:
    name: a registered score.
    table: un-prefixed statistics of one seed, e.g. `Tracker.summarize(state)` (with the
      turn-over estimator's summary merged in for turn-over scores) or the `train/` columns
      of a single-seed scores.npz with the prefix removed.

  Raises:
    ValueError: unknown name, or a statistic the score needs is missing (the message names
      it and what provides it).
  """
  spec = get(name)
  missing = [k for k in spec.needs if k not in table]
  if missing:
    raise ValueError(f"score {name!r} needs the statistic(s) {missing} ({_provider(spec)}); "
                     f"the table has {sorted(k for k in table if k != 'dropped')}")
  return spec.fn(table)


def combine(name: str, per_seed) -> jnp.ndarray | np.ndarray:
  """f32[K, N] per-seed scores -> f32[N] by the score's seed rule (NaN anywhere stays NaN
  for "sum"; "mean" averages the seeds that scored the example)."""
  spec = get(name)
  per_seed = _f32(per_seed)
  xp = _xp(per_seed)
  if spec.seeds == "sum":
    return xp.sum(per_seed, axis=0)
  scored = ~xp.isnan(per_seed)
  total = xp.sum(xp.where(scored, per_seed, 0.0), axis=0)
  count = xp.sum(scored, axis=0)
  return xp.where(count > 0, total / xp.maximum(count, 1), xp.nan).astype(xp.float32)


_SEED = re.compile(r"^seed(\d+)$")


def seeds_in(columns: Mapping[str, object], split: str = "train") -> list[int]:
  """The seed indices k of the `<split>/seed<k>/...` columns of a scores table (sorted)."""
  found = set()
  for key in columns:
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == split and _SEED.match(parts[1]):
      found.add(int(_SEED.match(parts[1]).group(1)))
  return sorted(found)


def columns_of(columns: Mapping[str, object], prefix: str) -> dict[str, np.ndarray]:
  """The entries `prefix<key>` of a scores table as {key: array} (no further slash in key)."""
  return {k[len(prefix):]: columns[k] for k in columns
          if k.startswith(prefix) and "/" not in k[len(prefix):]}


def from_scores(name: str, columns: Mapping[str, object]) -> np.ndarray:
  """The score f32[N] of a scores.npz table (keys `<split>/<key>`), rows in its split's order.

  A stored score column (`<split>/forgetting_score`) is read as it is; otherwise, when the
  table holds per-seed columns (`<split>/seed<k>/<key>`, written by `num_seeds > 1`), the
  score is computed per seed and combined by its seed rule; otherwise from the columns of
  the one run.

  Raises:
    ValueError: unknown name, or statistics missing from the table.
  """
  spec = get(name)
  if spec.stored_as and f"{spec.split}/{spec.stored_as}" in columns:
    return np.asarray(columns[f"{spec.split}/{spec.stored_as}"], np.float32)
  seeds = seeds_in(columns, spec.split)
  if seeds:
    per_seed = [score(name, columns_of(columns, f"{spec.split}/seed{k}/{spec.stream}"))
                for k in seeds]
    return np.asarray(combine(name, np.stack([np.asarray(p) for p in per_seed])), np.float32)
  return np.asarray(score(name, columns_of(columns, f"{spec.split}/{spec.stream}")), np.float32)


def order(scores: np.ndarray | jnp.ndarray, *, seed: int = 0, ties: str = "random",
          descending: bool = False) -> np.ndarray:
  """Positions i64[N] from easiest to hardest (`descending`: hardest first); NaN always last.

  Args:
    scores: f32[N], higher = harder; +inf is the hardest score, NaN unscored.
    seed: the random tie-breaking permutation (`ties="random"`).
    ties: "random" (a permutation from `seed`) or "stable" (by position, as a stable argsort).
    descending: hardest first.
  """
  if ties not in TIES:
    raise ValueError(f"unknown ties={ties!r}; choose one of {TIES}")
  scores = np.asarray(scores, np.float64)
  nan = np.isnan(scores)
  value = np.where(nan, 0.0, -scores if descending else scores)
  n = scores.shape[0]
  tiebreak = np.random.default_rng(seed).permutation(n) if ties == "random" else np.arange(n)
  return np.lexsort((tiebreak, value, nan))  # the last key is the primary one


def _provider(spec: Score) -> str:
  if spec.source == "turnover":
    return "turn-over dropout: --config.turnover.enabled=True"
  if spec.source == "grand":
    return "a GraNd column, e.g. from the removal_curves study"
  if spec.source == "engine":
    return "written into scores.npz at the end of a run with the 'margins' kernel"
  return f"the {spec.source!r} kernel: add it to --config.tracking.kernels"
