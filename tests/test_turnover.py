"""Turn-over dropout: masks, gradients, estimators against slow references, weighting."""

import functools

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regularity_jax import models
from regularity_jax import weighting
from regularity_jax.estimators import bias_variance
from regularity_jax.estimators import turnover as estimator
from regularity_jax.metrics.losses import cross_entropy
from regularity_jax.models import turnover
from regularity_jax.training import train_and_evaluate
from tests import engine_fixtures

KEY = jax.random.key_data(jax.random.key(7))


def tiny_mlp(sites=("all",), hidden=(16,), rate=0.5, example_shape=(5,), classes=3, seed=0):
  model = models.create_model("mlp", num_classes=classes, example_shape=example_shape,
                              rngs=nnx.Rngs(seed), hidden=hidden, turnover_sites=sites,
                              turnover_rate=rate)
  return models.split(model)


class TestMasks:

  def test_deterministic_per_layer_and_id(self):
    ids = jnp.array([3, 9, 3])
    a = turnover.example_masks(KEY, 0, ids, (64,), 0.5)
    b = turnover.example_masks(KEY, 0, ids, (64,), 0.5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0], a[2])           # same id, same mask
    assert not np.array_equal(a[0], a[1])               # another id, another mask
    other_layer = turnover.example_masks(KEY, 1, ids, (64,), 0.5)
    assert not np.array_equal(a[0], other_layer[0])     # another layer, another mask

  def test_independent_of_batch_position(self):
    a = turnover.example_masks(KEY, 2, jnp.array([1, 2, 3]), (32,), 0.5)
    b = turnover.example_masks(KEY, 2, jnp.array([3, 1]), (32,), 0.5)
    np.testing.assert_array_equal(a[2], b[0])
    np.testing.assert_array_equal(a[0], b[1])

  @pytest.mark.parametrize("rate", [0.5, 0.2, 0.8])
  def test_keeps_about_one_minus_rate(self, rate):
    m = turnover.example_masks(KEY, 0, jnp.arange(500), (200,), rate)
    assert abs(float(jnp.mean(m)) - (1 - rate)) < 0.01

  def test_own_and_flipped_are_complements(self):
    x = jnp.ones((4, 50))
    ctx = dict(key=KEY, ids=jnp.arange(4))
    own = turnover.apply_site(x, turnover.TurnOver(mode="own", **ctx), 0, 0.3)
    flipped = turnover.apply_site(x, turnover.TurnOver(mode="flipped", **ctx), 0, 0.3)
    assert not np.any((own != 0) & (flipped != 0))
    assert np.all((own != 0) | (flipped != 0))
    np.testing.assert_allclose(own[own != 0], 1 / 0.7, rtol=1e-6)
    np.testing.assert_allclose(flipped[flipped != 0], 1 / 0.3, rtol=1e-6)
    full = turnover.apply_site(x, turnover.TurnOver(mode="full", **ctx), 0, 0.3)
    np.testing.assert_array_equal(full, x)

  def test_conv_masks_are_per_channel(self):
    x = jnp.ones((2, 5, 5, 8))
    y = turnover.apply_site(x, turnover.TurnOver(KEY, jnp.arange(2), "own"), 0, 0.5)
    per_channel = y[:, 0, 0, :]
    np.testing.assert_array_equal(y, jnp.broadcast_to(per_channel[:, None, None], y.shape))

  def test_bad_mode_and_site(self):
    with pytest.raises(ValueError, match="unknown turn-over mode"):
      turnover.TurnOver(KEY, jnp.arange(2), "half")
    with pytest.raises(ValueError, match="unknown turn-over site.*hidden_0"):
      tiny_mlp(sites=("conv9",))


class TestGradientOnlyReachesOwnSubnetwork:

  def test_units_outside_own_mask_get_zero_gradient(self):
    graphdef, params, model_state = tiny_mlp(hidden=(12,))
    x = jax.random.normal(jax.random.key(1), (1, 5))
    for example_id in (0, 5, 11):
      ids = jnp.array([example_id])

      def loss(p):
        logits, _ = models.apply(graphdef, p, model_state, x, train=True,
                                 turnover=models.TurnOver(KEY, ids, "own"))
        return cross_entropy(logits, jnp.array([1]))[0]

      grads = jax.grad(loss)(params)
      own = np.asarray(turnover.example_masks(KEY, 0, ids, (12,), 0.5))[0]
      w_in = np.asarray(grads["hidden_layers"][0]["kernel"])  # [5, 12]
      w_out = np.asarray(grads["head"]["kernel"])              # [12, 3]
      assert np.all(w_in[:, ~own] == 0) and np.all(w_out[~own, :] == 0)
      assert np.all(np.asarray(grads["hidden_layers"][0]["bias"])[~own] == 0)
      assert np.any(w_in[:, own] != 0) and np.any(w_out[own, :] != 0)


@pytest.mark.parametrize("name,shape,kwargs", [
    ("mlp", (6, 6, 1), {"hidden": (8, 8)}),
    ("toneva_cnn", (28, 28, 1), {"dropout": 0.0}),
    ("small_cnn", (16, 16, 3), {"widths": (4, 8)}),
    pytest.param("resnet18", (16, 16, 3), {"width": 4}, marks=pytest.mark.slow),
])
def test_every_model_supports_turnover(name, shape, kwargs):
  model = models.create_model(name, num_classes=5, example_shape=shape, rngs=nnx.Rngs(0),
                              turnover_sites=("all",), **kwargs)
  graphdef, params, model_state = models.split(model)
  x = jax.random.normal(jax.random.key(0), (4,) + shape)
  ids = jnp.arange(4)
  out = {mode: models.apply(graphdef, params, model_state, x, train=False,
                            turnover=models.TurnOver(KEY, ids, mode))[0]
         for mode in turnover.MODES}
  plain = models.apply(graphdef, params, model_state, x, train=False)[0]
  np.testing.assert_allclose(out["full"], plain, rtol=1e-6)
  assert not np.allclose(out["own"], out["flipped"])
  assert not np.allclose(out["own"], plain)


class TestEstimatorsAgainstSlowReference:

  def _setup(self):
    graphdef, params, model_state = tiny_mlp(hidden=(10, 10), example_shape=(4,), classes=3)
    params = jax.tree.map(lambda p: 3 * p, params)  # make sub-networks disagree more
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(7, 4)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, 7), jnp.int32)
    return graphdef, params, model_state, x, y

  def _single_loss(self, graphdef, params, model_state, xi, yi, mask_id, mode):
    logits, _ = models.apply(graphdef, params, model_state, xi[None], train=False,
                             turnover=models.TurnOver(KEY, jnp.array([mask_id]), mode))
    return float(cross_entropy(logits, jnp.array([yi]))[0]), int(jnp.argmax(logits[0]) == yi)

  def test_self_influence_and_generalization_error(self):
    graphdef, params, model_state, x, y = self._setup()
    ids = jnp.arange(10, 17)
    own, flipped = estimator.own_and_flipped_logits(graphdef, params, model_state, KEY, x, ids)
    state = estimator.update(estimator.init(20, 3), ids, own, flipped, y)
    table = estimator.summarize(state)
    for row in range(7):
      i = int(ids[row])
      l_own, c_own = self._single_loss(graphdef, params, model_state, x[row], int(y[row]), i, "own")
      l_fl, c_fl = self._single_loss(graphdef, params, model_state, x[row], int(y[row]), i, "flipped")
      np.testing.assert_allclose(table["memorization_loss"][i], l_fl - l_own, rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(table["generalization_error"][i], l_fl, rtol=1e-5)
      assert table["memorization"][i] == c_own - c_fl
    assert int(table["turnover_observations"].sum()) == 7
    assert np.isnan(table["memorization"][0])  # never evaluated

  def test_means_over_evaluations(self):
    state = estimator.init(3, 2)
    ids = jnp.array([0, 1])
    y = jnp.array([0, 0])
    state = estimator.update(state, ids, jnp.array([[2., 0.], [0., 1.]]), jnp.array([[0., 1.], [0., 1.]]), y)
    state = estimator.update(state, ids, jnp.array([[2., 0.], [2., 0.]]), jnp.array([[2., 0.], [0., 1.]]), y)
    table = estimator.summarize(state)
    np.testing.assert_array_equal(table["memorization"][:2], [0.0, 1.0])
    np.testing.assert_array_equal(table["memorization_mean"][:2], [0.5, 0.5])

  @pytest.mark.parametrize("block", [2, 3, 7])
  def test_influence_on_targets(self, block):
    graphdef, params, model_state, x, y = self._setup()
    train_ids = jnp.array([4, 8, 15, 16, 23, 42, 5])
    targets_x, targets_y = x[:4], y[:4]
    got = jax.jit(functools.partial(estimator.influence_on_targets, graphdef, top_k=3,
                                    block_size=block))(params, model_state, KEY, train_ids,
                                                       targets_x, targets_y)
    brute = np.zeros((7, 4))
    for a, i in enumerate(train_ids.tolist()):
      for t in range(4):
        l_own, _ = self._single_loss(graphdef, params, model_state, targets_x[t], int(targets_y[t]), i, "own")
        l_fl, _ = self._single_loss(graphdef, params, model_state, targets_x[t], int(targets_y[t]), i, "flipped")
        brute[a, t] = l_fl - l_own
    np.testing.assert_allclose(got["total"], brute.sum(1), rtol=1e-4, atol=1e-5)
    for t in range(4):
      order = np.argsort(-brute[:, t], kind="stable")
      np.testing.assert_allclose(got["helpful"][t], brute[order[:3], t], rtol=1e-4, atol=1e-5)
      np.testing.assert_array_equal(got["helpful_ids"][t], np.asarray(train_ids)[order[:3]])
      order = np.argsort(brute[:, t], kind="stable")
      np.testing.assert_allclose(got["harmful"][t], brute[order[:3], t], rtol=1e-4, atol=1e-5)
      np.testing.assert_array_equal(got["harmful_ids"][t], np.asarray(train_ids)[order[:3]])


class TestBiasVariance:

  def test_decomposition_is_exact(self):
    probs = jax.nn.softmax(jax.random.normal(jax.random.key(0), (5, 30, 4)) * 2)
    labels = jnp.arange(30) % 4
    out = bias_variance.bias_variance(probs, labels)
    np.testing.assert_allclose(out["error"], out["bias"] + out["variance"], rtol=1e-5)
    onehot = np.eye(4)[np.asarray(labels)]
    p = np.asarray(probs)
    np.testing.assert_allclose(out["error"], ((p - onehot) ** 2).sum(-1).mean(0), rtol=1e-5)
    np.testing.assert_allclose(out["variance"], p.var(0).sum(-1), rtol=1e-4)

  def test_identical_models_have_no_variance(self):
    probs = jnp.broadcast_to(jnp.array([[0.7, 0.3]]), (3, 1, 2))
    out = bias_variance.bias_variance(probs, jnp.array([0]))
    np.testing.assert_allclose(out["variance"], [0.0], atol=1e-7)
    np.testing.assert_allclose(out["bias"], [0.18], rtol=1e-5)


class TestWeighting:

  def test_ranks_by_hand(self):
    d = weighting.difficulty_rank(jnp.array([3.0, 1.0, jnp.nan, 1.0, jnp.inf, 0.0]))
    np.testing.assert_allclose(d, [0.75, 0.375, 0.5, 0.375, 1.0, 0.0])

  @pytest.mark.parametrize("scheme", weighting.SCHEMES)
  def test_mean_one_and_shape(self, scheme):
    d = weighting.difficulty_rank(jnp.arange(100.0))
    w = weighting.weights(scheme, d, progress=0.3)
    np.testing.assert_allclose(jnp.mean(w), 1.0, rtol=1e-5)
    assert bool(jnp.all(w > 0))

  def test_directions(self):
    d = weighting.difficulty_rank(jnp.arange(11.0))
    assert bool(jnp.all(jnp.diff(weighting.weights("easy_first", d)) < 0))
    assert bool(jnp.all(jnp.diff(weighting.weights("hard_first", d)) > 0))
    medium = weighting.weights("medium_first", d)
    assert int(jnp.argmax(medium)) == 5
    np.testing.assert_array_equal(weighting.weights("uniform", d), 1.0)
    early = weighting.weights("self_paced", d, progress=0.0, temperature=10.0)
    late = weighting.weights("self_paced", d, progress=1.0, temperature=10.0)
    assert float(early[-1] / early[0]) < 0.01 and float(late[-1] / late[0]) > 0.9

  def test_unknown_scheme(self):
    with pytest.raises(ValueError, match="unknown weighting scheme"):
      weighting.weights("hardest", jnp.zeros(3))

  def test_weights_change_the_gradient_exactly(self):
    """The train step's gradient is sum_i w_i m_i grad loss_i / sum_i m_i."""
    import optax
    from regularity_jax import metrics
    from regularity_jax.training import steps
    from regularity_jax.training.state import TrainState
    graphdef, params, model_state = tiny_mlp(sites=(), hidden=(6,), example_shape=(4,))
    x = jax.random.normal(jax.random.key(3), (5, 4))
    y = jnp.array([0, 1, 2, 0, 1])
    w = jnp.array([0.5, 2.0, 0.0, 1.0, 3.0])
    mask = jnp.array([True, True, True, True, False])
    tracker = metrics.Tracker(5)
    from regularity_jax.training import optimizers
    tx = optax.sgd(1.0)  # with a constant rate of 1, params change by exactly -grad
    state = TrainState(step=jnp.int32(0), epoch=jnp.int32(0), params=params, model_state=model_state,
                       opt_state=tx.init(params), clock=optimizers.epoch_clock(0, 1, 1), key=KEY,
                       active=jnp.ones(5, bool),
                       train_stats=tracker.init(), eval_stats={})
    batch = {"image": x, "label": y, "id": jnp.arange(5), "mask": mask, "weight": w}
    new_state, _ = steps.make_train_step(graphdef, tx, tracker, optax.constant_schedule(1.0))(
        state, batch)
    step_taken = jax.tree.map(lambda a, b: a - b, params, new_state.params)

    def one(i):
      def loss(p):
        return cross_entropy(models.apply(graphdef, p, model_state, x[i:i + 1], train=True)[0],
                             y[i:i + 1])[0]
      return jax.grad(loss)(params)
    expected = jax.tree.map(lambda *g: sum(float(w[i]) * g[i] for i in range(4)) / 4,
                            *[one(i) for i in range(4)])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 step_taken, expected)


class TestEngineIntegration:

  @pytest.mark.slow
  def test_turnover_run_writes_scores_and_influence(self, tmp_path):
    engine_fixtures.write_tiny_npz(tmp_path / "d", class_names=[str(c) for c in range(10)])
    config = engine_fixtures.tiny_config(tmp_path / "d", num_epochs=2, **{
        "turnover.enabled": True, "turnover.influence_targets": "test",
        "turnover.influence_top_k": 3, "corruption.kind": "random_labels",
        "corruption.fraction": 0.25})
    result = train_and_evaluate(config, tmp_path / "run")
    s = result.scores
    for key in ("memorization", "memorization_loss", "generalization_error"):
      assert s[f"train/{key}"].shape == (96,) and np.isfinite(s[f"train/{key}"]).all()
    assert s["train/flipped_prob"].shape == (96, 10)  # 10 declared classes
    np.testing.assert_array_equal(s["train/turnover_observations"], 2)
    assert "memorization_auroc_corrupted" in result.final
    with np.load(result.workdir / "influence.npz") as z:
      assert z["test/helpful_ids"].shape == (48, 3) and z["train/total_influence"].shape == (96,)

  @pytest.mark.slow
  def test_weighting_from_running_state_and_from_file(self, tmp_path):
    # 10 named classes (4 used), the head these numbers were measured with
    engine_fixtures.write_tiny_npz(tmp_path / "d", class_names=[str(c) for c in range(10)])
    base = engine_fixtures.tiny_config(tmp_path / "d", num_epochs=2)
    first = train_and_evaluate(base, tmp_path / "first")
    np.testing.assert_array_equal(first.scores["train/weight"], 1.0)
    running = engine_fixtures.tiny_config(tmp_path / "d", num_epochs=2, **{
        "weighting.scheme": "hard_first", "weighting.score": "loss"})
    w = train_and_evaluate(running, tmp_path / "running").scores["train/weight"]
    assert w.std() > 0.1 and abs(w.mean() - 1) < 1e-5
    from_file = engine_fixtures.tiny_config(tmp_path / "d", num_epochs=1, **{
        "weighting.scheme": "easy_first", "weighting.score": "forgetting",
        "weighting.scores_path": str(first.workdir / "scores.npz")})
    w = train_and_evaluate(from_file, tmp_path / "file").scores["train/weight"]
    hard = np.where(first.scores["train/never_learned"], np.inf,
                    first.scores["train/forgetting_events"]).astype(np.float32)
    expected = weighting.weights("easy_first", weighting.difficulty_rank(hard), temperature=2.0)
    np.testing.assert_allclose(w, expected, rtol=1e-5)
    assert w.std() > 0.01
