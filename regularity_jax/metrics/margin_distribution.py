"""The training-set margin distribution and the area under its curve (Banburski et al. 2021).

Banburski, De La Torre, Pant, Shastri, Poggio, "Distribution of Classification Margins: Are All
Data Equal?" (arXiv 2107.10199, CBMM Memo 115) report that "the area under the curve of the
margin distribution on the training set" is a good measure of generalization, and that the
training set can be cut to its low-margin ("high capacity") examples once it is separated. Only
the abstract was available to us (neither the full text nor code could be found), so the exact
curve below is our choice: the training margins sorted increasingly, plotted against the
fraction of examples.

The curve. With the n valid normalized margins sorted increasingly, m_(1) <= ... <= m_(n), the
curve is the empirical quantile function of the margins

  Q(q) = m_(ceil(q n)),  q in (0, 1],

a right-continuous step function: x is the FRACTION of training examples (so curves of training
sets of different sizes share an axis, e.g. after pruning), y the normalized margin; step i
spans ((i - 1) / n, i / n]. `margin_distribution_curve` samples it at the midpoints of
`num_points` equal bins, x_k = (k + 1/2) / num_points; with num_points == n those are exactly the
sorted margins at x_i = (i - 1/2) / n (the usual plotting positions).

The area. `margin_auc` is the exact integral of that step function over [0, 1] (the rectangle
rule on the n steps, no interpolation):

  AUC = sum_i m_(i) * (1 / n) = mean of the valid normalized margins.

So the area does not depend on the sort; it is computed as a masked mean (O(n), no sort), and the
tests check it against the sorted-curve integral. Signed: misclassified examples (negative
margins) subtract area. Interpretation: the average normalized margin of the training set; two
networks with the same minimum margin (the quantity gradient descent maximizes asymptotically)
can differ in it, and the larger area goes with the better-generalizing network in Banburski et
al. The y scale is whatever normalizer the margins were divided by (see
`regularity_jax.models.norms`), so compare AUCs only under one normalizer.
"""

from __future__ import annotations

import jax.numpy as jnp


def _resolve_mask(margins: jnp.ndarray, mask: jnp.ndarray | None) -> jnp.ndarray:
  if mask is None:
    return jnp.ones(margins.shape, dtype=bool)
  return jnp.asarray(mask, dtype=bool)


def margin_auc(normalized_margins: jnp.ndarray, mask: jnp.ndarray | None = None) -> jnp.ndarray:
  """Area under the sorted-margin curve (empirical quantile function) over [0, 1].

  Jit-able: fixed shapes, no host sync.

  Args:
    normalized_margins: f32[N] (any float dtype; computed in float32).
    mask: bool[N] or None; False entries (padding, examples not in the training set, never
      observed) are left out, and the curve is over the valid ones only. NaN margins must be
      masked out (a NaN under the mask is ignored, one outside it gives NaN).

  Returns:
    f32[], the mean of the valid margins (see the module docstring); NaN if none is valid.
  """
  margins = normalized_margins.astype(jnp.float32)
  mask = _resolve_mask(margins, mask)
  count = jnp.sum(mask).astype(jnp.float32)
  total = jnp.sum(jnp.where(mask, margins, 0.0))
  return jnp.where(count > 0, total / jnp.maximum(count, 1.0), jnp.nan).astype(jnp.float32)


def margin_distribution_curve(
    normalized_margins: jnp.ndarray, mask: jnp.ndarray | None = None, *, num_points: int = 256,
) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Points of the sorted-margin curve for plotting, a fixed number of them.

  Jit-able with `num_points` static.

  Args:
    normalized_margins: f32[N].
    mask: bool[N] or None; only valid entries make the curve.
    num_points: K, samples of the curve; use N for every sorted margin when all are valid.

  Returns:
    x: f32[K], fractions of the valid examples, (k + 1/2) / K.
    y: f32[K], Q(x_k) = the ceil(x_k n)-th smallest valid margin (n valid margins); NaN if
      n == 0. With K == n, y is the sorted valid margins and mean(y) == `margin_auc`.
  """
  if num_points < 1:
    raise ValueError(f"num_points must be >= 1, got {num_points}")
  margins = normalized_margins.astype(jnp.float32)
  mask = _resolve_mask(margins, mask)
  n = jnp.sum(mask)
  # Invalid entries sort to the end, past every valid one.
  ordered = jnp.sort(jnp.where(mask, margins, jnp.inf))
  x = (jnp.arange(num_points, dtype=jnp.float32) + 0.5) / num_points
  # Float32 position; where x n lands exactly on a jump of Q, rounding may pick either side
  # (a midpoint is never on a jump when K == n).
  index = jnp.ceil(x * n.astype(jnp.float32)).astype(jnp.int32) - 1
  y = ordered[jnp.clip(index, 0, margins.shape[0] - 1)]
  return x, jnp.where(n > 0, y, jnp.nan)
