"""Margin-distribution curve and AUC (metrics/margin_distribution.py) on hand-made margins."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regularity_jax.metrics import margin_distribution as md


def reference_auc(margins, mask=None):
  """Slow obvious version: sort the valid margins, sum rectangles of width 1/n under the steps."""
  margins = np.asarray(margins, np.float64)
  if mask is not None:
    margins = margins[np.asarray(mask, bool)]
  ordered = np.sort(margins)
  return sum(m * (1.0 / len(ordered)) for m in ordered)


class TestMarginAuc:

  def test_all_equal(self):
    # Q(q) = 0.7 on (0, 1]: a rectangle of height 0.7 and width 1.
    np.testing.assert_allclose(md.margin_auc(jnp.full((10,), 0.7)), 0.7, rtol=1e-6)

  def test_uniform_grid(self):
    # Margins 0, 1/(n-1), ..., 1 (n = 11): steps of width 1/11, heights i/10, area = 55/110.
    margins = jnp.linspace(0.0, 1.0, 11)
    np.testing.assert_allclose(md.margin_auc(margins), 0.5, rtol=1e-6)

  def test_two_point(self):
    # 3 of 4 at -0.2, 1 of 4 at 1.0: area = 0.75 * -0.2 + 0.25 * 1.0 = 0.1 (negative area counts).
    margins = jnp.array([1.0, -0.2, -0.2, -0.2])
    np.testing.assert_allclose(md.margin_auc(margins), 0.1, rtol=1e-6)

  def test_against_plain_implementation(self):
    rng = np.random.default_rng(0)
    margins = rng.normal(size=37).astype(np.float32)
    mask = rng.random(37) < 0.6
    np.testing.assert_allclose(md.margin_auc(margins), reference_auc(margins), rtol=1e-5)
    np.testing.assert_allclose(md.margin_auc(margins, mask), reference_auc(margins, mask),
                               rtol=1e-5)

  def test_mask_ignores_padding_and_nan(self):
    margins = jnp.array([0.2, jnp.nan, 0.4, 99.0, jnp.inf])
    mask = jnp.array([True, False, True, False, False])
    np.testing.assert_allclose(md.margin_auc(margins, mask), 0.3, rtol=1e-6)

  def test_empty_mask_is_nan(self):
    assert np.isnan(md.margin_auc(jnp.ones(4), jnp.zeros(4, bool)))

  def test_jit(self):
    margins = jnp.array([0.5, 0.1, -0.3, 0.9])
    mask = jnp.array([True, True, False, True])
    np.testing.assert_allclose(jax.jit(md.margin_auc)(margins, mask), 0.5, rtol=1e-6)


class TestMarginDistributionCurve:

  def test_full_resolution_is_sorted_margins(self):
    margins = jnp.array([0.3, -0.1, 0.8, 0.2])
    x, y = md.margin_distribution_curve(margins, num_points=4)
    np.testing.assert_allclose(x, [0.125, 0.375, 0.625, 0.875])
    np.testing.assert_array_equal(y, np.float32([-0.1, 0.2, 0.3, 0.8]))
    np.testing.assert_allclose(jnp.mean(y), md.margin_auc(margins), rtol=1e-6)

  def test_mask_and_resampling(self):
    # Valid margins 1, 2 (n = 2); K = 4 samples at x = 1/8, 3/8, 5/8, 7/8 -> Q = 1, 1, 2, 2.
    margins = jnp.array([2.0, -5.0, 1.0])
    mask = jnp.array([True, False, True])
    x, y = md.margin_distribution_curve(margins, mask, num_points=4)
    np.testing.assert_array_equal(y, [1.0, 1.0, 2.0, 2.0])
    assert x.shape == (4,)

  def test_more_points_than_examples_integrates_to_auc(self):
    rng = np.random.default_rng(1)
    margins = jnp.asarray(rng.normal(size=25), jnp.float32)
    mask = jnp.asarray(rng.random(25) < 0.8)
    _, y = md.margin_distribution_curve(margins, mask, num_points=int(jnp.sum(mask)) * 8)
    np.testing.assert_allclose(jnp.mean(y), md.margin_auc(margins, mask), rtol=1e-5)
    assert np.all(np.diff(np.asarray(y)) >= 0)

  def test_empty_is_nan(self):
    _, y = md.margin_distribution_curve(jnp.ones(3), jnp.zeros(3, bool), num_points=5)
    assert np.all(np.isnan(y))

  def test_jit(self):
    margins = jnp.array([0.3, -0.1, 0.8, 0.2])
    fn = jax.jit(functools.partial(md.margin_distribution_curve, num_points=4))
    np.testing.assert_array_equal(fn(margins)[1], np.float32([-0.1, 0.2, 0.3, 0.8]))

  def test_bad_num_points(self):
    with pytest.raises(ValueError, match="num_points"):
      md.margin_distribution_curve(jnp.ones(3), num_points=0)
