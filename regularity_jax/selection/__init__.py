"""Data selection, pruning and prioritization from per-example scores.

  pruning         static pruning (host, NumPy): `score_from_table` turns a scores.npz table into
                  a difficulty score (higher = harder), `select` keeps a subset by a rule
                  (easiest, hardest, random, class-stratified, CCS).
  test_sets       regular / irregular test subsets by CBGL or mal-generalizing events, with
                  accuracy and expected calibration error (host, NumPy).
  online          jit-able prioritization kernels: Selective-Backprop, loss-based importance
                  sampling, InfoBatch, and a noise-aware exclusion mask.

A leaf: imports only NumPy and JAX, nothing else of regularity_jax.
"""

from regularity_jax.selection import online
from regularity_jax.selection import pruning
from regularity_jax.selection import test_sets

__all__ = ["online", "pruning", "test_sets"]
