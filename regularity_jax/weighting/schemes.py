"""Weighting schemes over difficulty ranks, jit-able, normalized to mean 1.

The difficulty score of each training example (higher = harder; `metrics.difficulty`) is first
turned into its rank d in [0, 1] among the training examples (0 = easiest, 1 = hardest; ties
share their mean rank; examples without a score get d = 0.5), so every scheme means the same
thing whatever the score's scale. Then, with temperature tau:

  uniform       w = 1
  easy_first    w = exp(-tau * d)                 easy examples weigh up to e^tau more
  hard_first    w = exp(+tau * d)
  medium_first  w = exp(-tau * (2d - 1)^2)        a bump at the median difficulty
  self_paced    w = sigmoid(tau * (lambda(t) - d)), the pace lambda growing linearly with the
                fraction t of training done, from `pace_start` at t = 0 to 1 + 4/tau at
                t = `pace_end` (then every example has w >= sigmoid(4) = 0.98 before
                normalization): easy examples first, harder ones admitted as training goes
                on (Kumar et al. 2010's self-paced learning, on ranks)

Weights are rescaled to mean 1 over the real (masked-in) examples, so the effective learning
rate stays that of uniform weighting; only the emphasis moves. The loss of a batch is then
`sum_i w_i * mask_i * loss_i / sum_i mask_i`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

SCHEMES = ("uniform", "easy_first", "hard_first", "medium_first", "self_paced")


def difficulty_rank(scores: jnp.ndarray, mask: jnp.ndarray | None = None) -> jnp.ndarray:
  """scores: f32[N] (higher = harder, NaN = unknown) -> f32[N] ranks in [0, 1].

  Ranks are taken among the entries with mask True and a finite score (+inf counts as the
  hardest); ties get their average rank; the rest get 0.5.
  """
  scores = jnp.asarray(scores, jnp.float32)
  valid = ~jnp.isnan(scores) if mask is None else (~jnp.isnan(scores) & mask)
  count = jnp.sum(valid)
  key = jnp.where(valid, scores, jnp.inf)
  # Average rank of ties: the number strictly below plus half the number equal.
  sorted_keys = jnp.sort(jnp.where(valid, scores, jnp.inf))
  below = jnp.searchsorted(sorted_keys, key, side="left")
  upto = jnp.searchsorted(sorted_keys, key, side="right")
  upto = jnp.minimum(upto, count)
  rank = (below + upto - 1) / 2.0
  d = rank / jnp.maximum(count - 1, 1)
  return jnp.where(valid, jnp.clip(d, 0.0, 1.0), 0.5).astype(jnp.float32)


def weights(scheme: str, d: jnp.ndarray, *, temperature: float = 2.0, progress: float = 1.0,
            pace_start: float = 0.3, pace_end: float = 0.8,
            mask: jnp.ndarray | None = None) -> jnp.ndarray:
  """Per-example weights f32[N] for difficulty ranks d: f32[N] (see the module docstring).

  Args:
    scheme: one of SCHEMES (static).
    d: difficulty ranks from `difficulty_rank`.
    temperature: tau, the strength of the emphasis.
    progress: fraction of training done, in [0, 1] (self_paced only).
    pace_start: self_paced lambda at progress 0 (the easiest fraction admitted first).
    pace_end: progress at which self_paced admits everything.
    mask: bool[N] examples that count for the mean-1 normalization (None: all).
  """
  if scheme not in SCHEMES:
    raise ValueError(f"unknown weighting scheme {scheme!r}; choose one of {SCHEMES}")
  d = jnp.asarray(d, jnp.float32)
  tau = jnp.float32(temperature)
  if scheme == "uniform":
    w = jnp.ones_like(d)
  elif scheme == "easy_first":
    w = jnp.exp(-tau * d)
  elif scheme == "hard_first":
    w = jnp.exp(tau * d)
  elif scheme == "medium_first":
    w = jnp.exp(-tau * (2.0 * d - 1.0) ** 2)
  else:
    frac = jnp.clip(jnp.float32(progress) / max(pace_end, 1e-6), 0.0, 1.0)
    lam = pace_start + (1.0 + 4.0 / tau - pace_start) * frac  # at pace_end: sigmoid(4) ~ 0.98 for d = 1
    w = jax.nn.sigmoid(tau * (lam - d))
  m = jnp.ones_like(d, bool) if mask is None else mask
  mean = jnp.sum(jnp.where(m, w, 0.0)) / jnp.maximum(jnp.sum(m), 1)
  return (w / jnp.maximum(mean, 1e-12)).astype(jnp.float32)
