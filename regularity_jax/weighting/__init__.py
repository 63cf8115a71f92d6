"""Difficulty-based per-example loss weights (idea D): `w = g(difficulty)`.

  schemes  uniform, easy_first, hard_first, medium_first, self_paced over difficulty ranks
  sources  difficulty scores from the running tracker state or from a previous scores.npz
"""

from regularity_jax.weighting.schemes import SCHEMES
from regularity_jax.weighting.schemes import difficulty_rank
from regularity_jax.weighting.schemes import weights
from regularity_jax.weighting.sources import SCORES
from regularity_jax.weighting.sources import difficulty_from_summary

__all__ = ["SCHEMES", "difficulty_rank", "weights", "SCORES", "difficulty_from_summary"]
