"""Difficulty scores (higher = harder) for weighting, from a tracker summary table.

  forgetting            forgetting events, never-learned examples hardest (Toneva et al.)
  cbtl                  1 - fraction of correct presentations (CBTL / observations, Zhang et al.)
  aum                   -AUM (low margin = hard, Pleiss et al.)
  el2n                  mean EL2N over presentations (Paul et al.)
  loss                  mean loss over presentations
  generalization_error  the turn-over flipped-network loss (needs turnover.enabled; idea D)

The same names read a previous run's scores.npz (`train/<key>` columns), so weights can come
from the running state of this run or from another run.
"""

from __future__ import annotations

from typing import Mapping

import jax.numpy as jnp

SCORES = ("forgetting", "cbtl", "aum", "el2n", "loss", "generalization_error")


def difficulty_from_summary(name: str, table: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
  """f32[N] difficulty (NaN where unknown) from a summary table keyed like `Tracker.summarize`
  (plus `generalization_error` from the turn-over estimator)."""
  try:
    if name == "forgetting":
      score = table["forgetting_events"].astype(jnp.float32)
      score = jnp.where(table["never_learned"], jnp.inf, score)
      return jnp.where(table["observations"] > 0, score, jnp.nan)
    if name == "cbtl":
      return 1.0 - table["mean_correct"]
    if name == "aum":
      return -table["aum"]
    if name == "el2n":
      return table["mean_el2n"]
    if name == "loss":
      return table["mean_loss"]
    if name == "generalization_error":
      return table["generalization_error"]
  except KeyError as e:
    raise ValueError(f"difficulty score {name!r} needs the statistic {e.args[0]!r}, which is not "
                     f"tracked; have {sorted(table)}") from None
  raise ValueError(f"unknown difficulty score {name!r}; choose one of {SCORES}")
