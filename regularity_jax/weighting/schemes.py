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

from regularity_jax import registry


def _uniform(d, tau, lam):
  del tau, lam
  return jnp.ones_like(d)


def _easy_first(d, tau, lam):
  del lam
  return jnp.exp(-tau * d)


def _hard_first(d, tau, lam):
  del lam
  return jnp.exp(tau * d)


def _medium_first(d, tau, lam):
  del lam
  return jnp.exp(-tau * (2.0 * d - 1.0) ** 2)


def _self_paced(d, tau, lam):
  return jax.nn.sigmoid(tau * (lam - d))


def _check_scheme(obj, spec):
  if not callable(obj):
    raise registry.PartError(f"weighting scheme {spec!r} must be a function "
                             "scheme(d, tau, lam) -> f32[N] (docs/parts.md)")
  return obj


# A scheme is `scheme(d, tau, lam) -> f32[N]` un-normalized weights of ranks d: f32[N] in
# [0, 1], temperature tau: f32[] and the self-paced pace lam: f32[] (jit-able; `weights`
# rescales to mean 1). User schemes by import path, 'package.module:fn' (docs/parts.md).
SCHEME_REGISTRY = registry.Registry(
    "weighting scheme", "--config.weighting.scheme",
    {"uniform": _uniform, "easy_first": _easy_first, "hard_first": _hard_first,
     "medium_first": _medium_first, "self_paced": _self_paced}, check=_check_scheme)
SCHEMES = tuple(SCHEME_REGISTRY)


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
    scheme: one of SCHEMES, or a user scheme 'package.module:fn' (static).
    d: difficulty ranks from `difficulty_rank`.
    temperature: tau, the strength of the emphasis.
    progress: fraction of training done, in [0, 1] (self_paced only).
    pace_start: self_paced lambda at progress 0 (the easiest fraction admitted first).
    pace_end: progress at which self_paced admits everything.
    mask: bool[N] examples that count for the mean-1 normalization (None: all).
  """
  try:
    fn = SCHEME_REGISTRY.get(scheme)
  except registry.PartError as e:
    raise ValueError(str(e)) from None
  d = jnp.asarray(d, jnp.float32)
  tau = jnp.float32(temperature)
  frac = jnp.clip(jnp.float32(progress) / max(pace_end, 1e-6), 0.0, 1.0)
  lam = pace_start + (1.0 + 4.0 / tau - pace_start) * frac  # at pace_end: sigmoid(4) ~ 0.98 for d = 1
  w = fn(d, tau, lam)
  m = jnp.ones_like(d, bool) if mask is None else mask
  mean = jnp.sum(jnp.where(m, w, 0.0)) / jnp.maximum(jnp.sum(m), 1)
  return (w / jnp.maximum(mean, 1e-12)).astype(jnp.float32)
