"""Difficulty-based per-example loss weights (idea D): `w = g(difficulty)`.

  schemes  uniform, easy_first, hard_first, medium_first, self_paced over difficulty ranks

The difficulty itself is any training-split score of `metrics.difficulty` (the one registry
of scores), from the running state of this run or from a previous run's scores.npz.
"""

from regularity_jax.metrics.difficulty import TRAIN_SCORES as SCORES
from regularity_jax.weighting.schemes import SCHEMES
from regularity_jax.weighting.schemes import difficulty_rank
from regularity_jax.weighting.schemes import weights

__all__ = ["SCHEMES", "difficulty_rank", "weights", "SCORES"]
