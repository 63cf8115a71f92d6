"""Online prioritization kernels (regularity_jax.selection.online): values, jit, unbiasedness."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regularity_jax.selection import online


def push(state, values, mask=None):
  return online.sb_update(state, jnp.asarray(values, jnp.float32),
                          None if mask is None else jnp.asarray(mask))


class TestSelectiveBackprop:

  def test_init(self):
    state = online.sb_init()
    assert state.history.shape == (1024,) and state.history.dtype == jnp.float32
    assert state.count.dtype == jnp.int32 and state.pos.dtype == jnp.int32
    with pytest.raises(ValueError, match="history_size"):
      online.sb_init(0)

  def test_empty_history_selects_everything(self):
    prob = online.sb_probability(online.sb_init(8), jnp.array([0.0, 5.0]), 3.0)
    np.testing.assert_array_equal(prob, [1.0, 1.0])

  def test_probability_is_cdf_to_the_beta(self):
    state = push(online.sb_init(8), [1, 2, 3, 4])
    # Fraction of {1, 2, 3, 4} <= loss: 0, 2/4, 3/4, 1 (the 4 zero slots are not valid).
    losses = jnp.array([0.5, 2.0, 3.5, 10.0])
    np.testing.assert_allclose(online.sb_probability(state, losses, 1.0), [0, 0.5, 0.75, 1])
    np.testing.assert_allclose(online.sb_probability(state, losses, 2.0), [0, 0.25, 0.5625, 1])

  def test_ring_buffer_wraps_and_skips_padding(self):
    state = push(online.sb_init(4), [1, 2, 3])
    np.testing.assert_array_equal(state.history, [1, 2, 3, 0])
    assert (int(state.count), int(state.pos)) == (3, 3)
    # Real rows 10, 20, 30 go to slots 3, 0, 1; the padding row (99) is not pushed.
    state = push(state, [10, 99, 20, 30], [True, False, True, True])
    np.testing.assert_array_equal(state.history, [20, 30, 3, 10])
    assert (int(state.count), int(state.pos)) == (4, 2)
    # {3, 10, 20, 30} <= 15: 2 of 4.
    np.testing.assert_allclose(online.sb_probability(state, jnp.array([15.0]), 1.0), [0.5])
    unchanged = push(state, [7, 7], [False, False])
    chex.assert_trees_all_equal(unchanged, state)

  def test_batch_larger_than_history_keeps_the_last(self):
    state = push(online.sb_init(4), [1, 2, 3, 4, 5, 6])
    # 3, 4, 5, 6 land in slots 2, 3, 0, 1.
    np.testing.assert_array_equal(state.history, [5, 6, 3, 4])
    assert (int(state.count), int(state.pos)) == (4, 2)

  def test_beta_one_keeps_about_half(self):
    key_h, key_l, key_s = jax.random.split(jax.random.PRNGKey(0), 3)
    state = push(online.sb_init(), jax.random.exponential(key_h, (1024,)))
    losses = jax.random.exponential(key_l, (8192,))
    kept = online.sb_select(key_s, state, losses, None, 1.0)
    assert abs(float(kept.mean()) - 0.5) < 0.02
    kept3 = online.sb_select(key_s, state, losses, None, 3.0)
    assert abs(float(kept3.mean()) - 0.25) < 0.02  # E[U^3] for U uniform

  def test_select_respects_mask_and_extremes(self):
    state = push(online.sb_init(4), [1, 2, 3, 4])
    losses = jnp.array([0.0, 9.0, 9.0, 0.0])  # probabilities 0, 1, 1, 0
    mask = jnp.array([True, True, False, False])
    for seed in range(5):
      sel = online.sb_select(jax.random.PRNGKey(seed), state, losses, mask, 1.0)
      np.testing.assert_array_equal(sel, [False, True, False, False])

  def test_jit_does_not_retrace(self):
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(key, state, losses, mask, beta):
      return online.sb_update(state, losses, mask), online.sb_select(key, state, losses, mask, beta)

    state = online.sb_init(16)
    for i in range(4):
      losses = jnp.arange(6, dtype=jnp.float32) * (i + 1)
      mask = jnp.arange(6) < i + 2
      state, _ = step(jax.random.PRNGKey(i), state, losses, mask, jnp.float32(1.0 + i))
    assert int(state.count) == 2 + 3 + 4 + 5


class TestImportanceSampling:

  def test_probabilities_by_hand(self):
    losses = jnp.array([1.0, 3.0, 0.0, jnp.nan])  # NaN counts as the max finite loss, 3
    np.testing.assert_allclose(online.importance_probabilities(losses), np.array([1, 3, 0, 3]) / 7,
                               rtol=1e-6)
    np.testing.assert_allclose(online.importance_probabilities(losses, 0.5),
                               0.5 * np.array([1, 3, 0, 3]) / 7 + 0.5 / 4, rtol=1e-6)
    masked = online.importance_probabilities(losses, 0.0, jnp.array([True, False, True, True]))
    np.testing.assert_allclose(masked, np.array([1, 0, 0, 3]) / 4, rtol=1e-6)
    np.testing.assert_allclose(online.importance_probabilities(jnp.zeros(4)), [0.25] * 4)

  def test_weights_make_the_weighted_mean_unbiased(self):
    n = 50
    rng = np.random.default_rng(0)
    values = jnp.asarray(rng.normal(size=n) + 2.0, jnp.float32)
    probs = online.importance_probabilities(jnp.asarray(rng.exponential(size=n), jnp.float32), 0.1)
    # Exact identity: sum_i p_i / (N p_i) f_i = mean f.
    w_all = online.importance_weights(probs, jnp.arange(n))
    assert float(jnp.sum(probs * w_all * values)) == pytest.approx(float(values.mean()), rel=1e-5)
    # Monte Carlo: 200k draws, within 4 standard errors.
    idx = online.sample_indices(jax.random.PRNGKey(1), probs, 200_000)
    assert idx.dtype == jnp.int32
    estimates = np.asarray(online.importance_weights(probs, idx) * values[idx], np.float64)
    stderr = estimates.std() / np.sqrt(estimates.size)
    assert abs(estimates.mean() - float(values.mean())) < 4 * stderr
    freq = np.bincount(np.asarray(idx), minlength=n) / idx.size
    np.testing.assert_allclose(freq, probs, atol=4e-3)
    # Without the weights the batch mean estimates the p-weighted mean instead.
    plain = np.asarray(values[idx], np.float64)
    assert abs(plain.mean() - float(jnp.sum(probs * values))) < 4 * plain.std() / np.sqrt(idx.size)

  def test_jit_does_not_retrace(self):
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def draw(key, losses, smoothing, mask):
      probs = online.importance_probabilities(losses, smoothing, mask)
      idx = online.sample_indices(key, probs, 8)
      return idx, online.importance_weights(probs, idx)

    for i in range(3):
      idx, w = draw(jax.random.PRNGKey(i), jnp.arange(10.0) + i, jnp.float32(0.1 * i),
                    jnp.arange(10) > i)
      assert idx.shape == (8,) and w.shape == (8,) and (np.asarray(idx) > i).all()


class TestInfoBatch:

  LOSSES = jnp.arange(10, dtype=jnp.float32)  # mean 4.5: positions 0..4 are below the mean

  def plan(self, seed, r, epoch=0, num_epochs=8, losses=None, seen=None):
    losses = self.LOSSES if losses is None else losses
    seen = jnp.ones(losses.shape, bool) if seen is None else seen
    return online.infobatch_plan(jax.random.PRNGKey(seed), losses, seen, r, epoch, num_epochs)

  def test_exact_counts_and_weights(self):
    for seed in range(10):
      active, weights = self.plan(seed, 0.4)
      active, weights = np.asarray(active), np.asarray(weights)
      assert active[:5].sum() == 3  # (1 - 0.4) * 5 = 3 below-mean examples kept, 2 pruned
      assert active[5:].all()
      np.testing.assert_allclose(weights[:5][active[:5]], 1 / 0.6, rtol=1e-6)
      np.testing.assert_array_equal(weights[:5][~active[:5]], 0.0)
      np.testing.assert_array_equal(weights[5:], 1.0)

  def test_unseen_examples_are_kept_and_ignored_by_the_mean(self):
    # Mean over the seen losses (0, 1, 2, 3) is 1.5: only 0 and 1 are below it; keep 1 of them.
    losses = jnp.array([0.0, 1.0, 2.0, 3.0, 100.0, jnp.nan])
    seen = jnp.array([True, True, True, True, False, False])
    active, weights = self.plan(0, 0.5, losses=losses, seen=seen)
    assert np.asarray(active)[:2].sum() == 1 and np.asarray(active)[2:].all()
    np.testing.assert_array_equal(np.asarray(weights)[2:], 1.0)
    np.testing.assert_allclose(np.asarray(weights)[:2].sum(), 2.0)

  def test_anneal_switch(self):
    # 0.875 * 8 = 7: epochs 0..6 prune, epoch 7 trains on everything with weight 1.
    active, _ = self.plan(0, 0.4, epoch=6)
    assert int(active.sum()) == 8
    active, weights = self.plan(0, 0.4, epoch=7)
    assert bool(active.all()) and bool((weights == 1).all())

  def test_stochastic_rounding_of_the_count(self):
    # (1 - 0.5) * 5 = 2.5: keep 2 or 3, each half the time; every example kept with prob 1/2.
    plans = jax.vmap(lambda k: online.infobatch_plan(k, self.LOSSES, jnp.ones(10, bool), 0.5, 0, 8))
    active, _ = plans(jax.random.split(jax.random.PRNGKey(0), 4000))
    counts = np.asarray(active[:, :5].sum(axis=1))
    assert set(np.unique(counts).tolist()) == {2, 3}
    assert abs((counts == 3).mean() - 0.5) < 0.04
    np.testing.assert_allclose(np.asarray(active[:, :5].mean(axis=0)), 0.5, atol=0.04)

  @staticmethod
  def linear_grads(weights_per_example, x, y, w):
    """grad_w sum_i c_i (x_i . w - y_i)^2 / 2 of a linear model, f32[D]."""
    def loss(w):
      return jnp.sum(weights_per_example * 0.5 * (x @ w - y) ** 2)
    return jax.grad(loss)(w)

  def problem(self):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(10, 3)), jnp.float32)
    y = jnp.asarray(rng.normal(size=10), jnp.float32)
    w = jnp.asarray(rng.normal(size=3), jnp.float32)
    return x, y, w

  def test_expected_gradient_is_the_full_gradient_by_enumeration(self):
    # r = 0.6 on the 5 below-mean examples keeps exactly 2, uniformly: enumerate the 10 subsets
    # with the weights the plan uses, and check the sampler is uniform over them.
    x, y, w = self.problem()
    full = self.linear_grads(jnp.ones(10), x, y, w)
    _, weights = self.plan(0, 0.6)
    kept_weight = float(np.asarray(weights)[:5].max())
    subsets = list(itertools.combinations(range(5), 2))
    total = np.zeros(3)
    for subset in subsets:
      c = np.ones(10)
      c[:5] = 0.0
      c[list(subset)] = kept_weight
      total += np.asarray(self.linear_grads(jnp.asarray(c, jnp.float32), x, y, w), np.float64)
    np.testing.assert_allclose(total / len(subsets), full, rtol=1e-5, atol=1e-5)
    plans = jax.vmap(lambda k: online.infobatch_plan(k, self.LOSSES, jnp.ones(10, bool), 0.6, 0, 8))
    active, _ = plans(jax.random.split(jax.random.PRNGKey(1), 5000))
    codes = np.asarray(active[:, :5]) @ (2 ** np.arange(5))
    freq = np.array([(codes == sum(2 ** i for i in s)).mean() for s in subsets])
    assert freq.sum() == 1.0
    np.testing.assert_allclose(freq, 0.1, atol=0.02)

  def test_expected_gradient_is_the_full_gradient_by_many_seeds(self):
    # r = 0.3: 3.5 kept on average, the non-integer case.
    x, y, w = self.problem()
    full = np.asarray(self.linear_grads(jnp.ones(10), x, y, w), np.float64)
    grads = jax.jit(jax.vmap(lambda k: self.linear_grads(
        online.infobatch_plan(k, self.LOSSES, jnp.ones(10, bool), 0.3, 0, 8)[1], x, y, w)))
    samples = np.asarray(grads(jax.random.split(jax.random.PRNGKey(2), 20000)), np.float64)
    stderr = samples.std(axis=0) / np.sqrt(samples.shape[0])
    assert (np.abs(samples.mean(axis=0) - full) < 4 * stderr + 1e-6).all()

  def test_bad_ratio(self):
    with pytest.raises(ValueError, match="prune_ratio"):
      self.plan(0, 1.0)

  def test_jit_does_not_retrace(self):
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def plan(key, losses, seen, r, epoch, num_epochs):
      return online.infobatch_plan(key, losses, seen, r, epoch, num_epochs)

    for epoch in range(8):
      active, _ = plan(jax.random.PRNGKey(epoch), self.LOSSES + epoch, jnp.arange(10) >= epoch % 3,
                       jnp.float32(0.2 + 0.05 * epoch), jnp.int32(epoch), jnp.int32(8))
      assert active.shape == (10,)
    assert bool(active.all())  # the last epoch is annealed


class TestNoiseAwareMask:

  SCORES = jnp.array([0.0, 5.0, jnp.inf, jnp.nan, 2.0, 5.0])

  def test_excludes_the_top_fraction(self):
    # round(0.5 * 6) = 3 flagged: +inf (2), then the two 5s (1, 5).
    np.testing.assert_array_equal(online.noise_aware_mask(self.SCORES, 0.5),
                                  [True, False, False, True, True, False])
    np.testing.assert_array_equal(online.noise_aware_mask(self.SCORES, 4 / 6),
                                  [True, False, False, True, False, False])
    # NaN (never observed) is never excluded.
    np.testing.assert_array_equal(online.noise_aware_mask(self.SCORES, 1.0),
                                  [False, False, False, True, False, False])
    assert bool(online.noise_aware_mask(self.SCORES, 0.0).all())

  def test_ties(self):
    scores = jnp.array([1.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(online.noise_aware_mask(scores, 0.25), [False, True, True, True])
    flagged = {int(np.flatnonzero(~np.asarray(online.noise_aware_mask(
        scores, 0.25, jax.random.PRNGKey(s))))[0]) for s in range(30)}
    assert flagged == {0, 1, 2}

  def test_combines_with_importance_sampling(self):
    keep = online.noise_aware_mask(jnp.array([9.0, 0.0, 0.0, 1.0]), 0.25)
    probs = online.importance_probabilities(jnp.array([5.0, 1.0, 1.0, 2.0]), 0.0, keep)
    np.testing.assert_allclose(probs, [0, 0.25, 0.25, 0.5])

  def test_jit_does_not_retrace(self):
    chex.clear_trace_counter()
    mask = jax.jit(chex.assert_max_traces(online.noise_aware_mask, n=1))
    for i in range(3):
      out = mask(jnp.arange(8.0) * (i + 1), jnp.float32(0.125 * i))
      assert int((~out).sum()) == i
