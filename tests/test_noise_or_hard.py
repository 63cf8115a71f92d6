"""Noise or hard: the holdout, RHO-LOSS, AUM's threshold samples, cleanlab on turn-over.

Each is checked against a slow, obvious recomputation: the holdout and threshold sets by
per-class loops, RHO-LOSS's choice of rows by sorting every chunk on the host, the
irreducible losses by one forward pass per example, AUM's flags by counting threshold samples
per example, and cleanlab's columns by calling cleanlab on the stored probabilities.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regularity_jax import models
from regularity_jax.data import Dataset
from regularity_jax.data import Split
from regularity_jax.data import partitions
from regularity_jax.data.corruption import uniform_by_id
from regularity_jax.estimators import aum_threshold
from regularity_jax.estimators import label_issues
from regularity_jax.metrics.losses import cross_entropy
from regularity_jax.runs import scores_file
from regularity_jax.selection import irreducible
from regularity_jax.training import ConfigError
from regularity_jax.training import train_and_evaluate
from regularity_jax.training.features.prioritization import selective_backprop
from tests import engine_fixtures


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp("data")
  # 10 declared classes, 4 of them used: a 10-logit head, as the numbers below assume
  engine_fixtures.write_tiny_npz(d, n_train=160, class_names=[str(c) for c in range(10)])
  return d


def _run(data_dir, path, **overrides):
  return train_and_evaluate(engine_fixtures.tiny_config(data_dir, **overrides), path)


def _dataset(n=50, num_classes=5, ids=None):
  ids = np.arange(100, 100 + n) if ids is None else np.asarray(ids)
  labels = (ids * 7) % num_classes
  split = Split.clean(np.zeros((len(ids), 2), np.float32), labels, ids)
  return Dataset(name="x", train=split, test=split, num_classes=num_classes,
                 class_names=tuple(map(str, range(num_classes))), source="generated:x")


class TestPartitions:

  def test_holdout_is_the_first_of_each_class_by_per_id_random_order(self):
    ds = _dataset(n=103)
    mask = partitions.holdout_mask(ds.train.ids, ds.train.labels, fraction=0.3, seed=4)
    u = uniform_by_id(4, 101, ds.train.ids)
    for c in range(5):  # slow reference: per class, sort by (u, id), take round(0.3 n_c)
      rows = [i for i in range(103) if ds.train.labels[i] == c]
      rows.sort(key=lambda i: (u[i], ds.train.ids[i]))
      want = set(rows[:int(round(0.3 * len(rows)))])
      assert {i for i in range(103) if mask[i] and ds.train.labels[i] == c} == want

  def test_folds_partition_every_example_once_and_hold_out_moves_rows(self):
    ds = _dataset(n=60)
    masks = [partitions.holdout_mask(ds.train.ids, ds.train.labels, folds=5, fold=k)
             for k in range(5)]
    assert np.array_equal(np.sum(masks, axis=0), np.ones(60))
    out = partitions.hold_out(ds, folds=5, fold=2)
    assert sorted(out.holdout.ids) == sorted(ds.train.ids[masks[2]])
    assert sorted(np.concatenate([out.train.ids, out.holdout.ids])) == sorted(ds.train.ids)

  def test_holdout_of_an_example_does_not_depend_on_the_subset(self):
    full = _dataset(n=200)
    sub = _dataset(ids=full.train.ids[::2])
    u_full = uniform_by_id(0, 101, full.train.ids)
    assert np.array_equal(uniform_by_id(0, 101, sub.train.ids), u_full[::2])

  def test_threshold_sets_are_disjoint_and_of_size_n_over_c_plus_1(self):
    ds = _dataset(n=60, num_classes=5)
    one = partitions.threshold_sample_mask(ds.train.ids, 5, 1)
    two = partitions.threshold_sample_mask(ds.train.ids, 5, 2)
    assert one.sum() == two.sum() == 10 and not (one & two).any()
    relabelled = partitions.add_threshold_samples(ds, 2)
    assert relabelled.num_classes == 6 and len(relabelled.class_names) == 6
    assert np.array_equal(relabelled.train.labels == 5, two)
    assert np.array_equal(relabelled.train.original_labels, ds.train.labels)


class TestAumThresholdFlags:

  def test_flags_count_threshold_samples_above_each_example(self):
    rng = np.random.default_rng(0)
    aum = rng.normal(size=300)
    aum[[3, 7]] = np.nan
    threshold = rng.random(300) < 0.2
    got = aum_threshold.flags(aum, threshold)
    reference = aum[threshold & np.isfinite(aum)]
    for i in range(300):  # Pleiss et al.'s rule, one example at a time
      if threshold[i] or not np.isfinite(aum[i]):
        assert np.isnan(got[i])
      else:
        assert got[i] == float(np.mean(reference > aum[i]) > 0.01)
    assert aum_threshold.cutoff(aum, threshold) == pytest.approx(np.percentile(reference, 99))

  def test_combine_flags_where_every_scoring_run_flags(self):
    a = np.array([1, 1, 0, np.nan, np.nan, 0], np.float32)
    b = np.array([1, 0, 0, 1, np.nan, np.nan], np.float32)
    np.testing.assert_array_equal(aum_threshold.combine(a, b), [1, 0, 0, 1, np.nan, 0])

  @pytest.mark.slow
  def test_two_runs_flag_every_example(self, data_dir, tmp_path):
    one = _run(data_dir, tmp_path / "set1", **{"aum_threshold.set": 1})
    prov = scores_file.load(one.workdir / "scores.npz").provenance
    assert prov["fake_class"] == {"set": 1, "seed": 0, "class": 10, "count": 14}
    two = _run(data_dir, tmp_path / "set2", **{
        "aum_threshold.set": 2, "aum_threshold.partner": str(one.workdir / "scores.npz")})
    s1, s2 = one.scores, two.scores
    for s in (s1, s2):  # the run's own flags, recomputed from its AUM column
      thr = s["train/aum_threshold_sample"]
      # the tiny npz declares C = 10 classes (4 of them used), so m = 160 // 11
      assert thr.sum() == 14 and np.array_equal(s["train/label"] == 10, thr)
      np.testing.assert_array_equal(s["train/aum_threshold_flag"],
                                    aum_threshold.flags(s["train/aum"], thr))
    assert not (s1["train/aum_threshold_sample"] & s2["train/aum_threshold_sample"]).any()
    flag = s2["train/aum_flag"]
    assert np.isfinite(flag).all()
    both = ~s1["train/aum_threshold_sample"] & ~s2["train/aum_threshold_sample"]
    np.testing.assert_array_equal(flag[both], (s1["train/aum_threshold_flag"][both] == 1)
                                  & (s2["train/aum_threshold_flag"][both] == 1))
    only2 = s1["train/aum_threshold_sample"]
    np.testing.assert_array_equal(flag[only2], s2["train/aum_threshold_flag"][only2])

  @pytest.mark.slow
  def test_partner_of_the_same_set_is_refused_before_the_run(self, data_dir, tmp_path):
    one = _run(data_dir, tmp_path / "set1", **{"aum_threshold.set": 1, "num_epochs": 1})
    with pytest.raises(ConfigError, match="not the other threshold set"):
      _run(data_dir, tmp_path / "again", **{
          "aum_threshold.set": 1, "aum_threshold.partner": str(one.workdir / "scores.npz")})
    assert not (tmp_path / "again").exists()

  def test_bad_fields(self, data_dir, tmp_path):
    with pytest.raises(ConfigError, match="must be 0 .off., 1 or 2"):
      _run(data_dir, tmp_path / "a", **{"aum_threshold.set": 3})
    with pytest.raises(ConfigError, match="needs --config.aum_threshold.set"):
      _run(data_dir, tmp_path / "b", **{"aum_threshold.partner": "x.npz"})


class TestRhoLoss:

  def test_selection_step_trains_on_the_top_reducible_rows(self):
    """One step of the RHO-LOSS selection against a host sort of the same chunk."""
    model = models.create_model("mlp", num_classes=3, example_shape=(4,), hidden=(8,),
                                rngs=__import__("flax").nnx.Rngs(params=jax.random.key(0)))
    graphdef, params, model_state = models.split(model)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 4)).astype(np.float32)
    y = rng.integers(0, 3, 12).astype(np.int32)
    il = rng.random(12).astype(np.float32)
    mask = np.ones(12, bool)
    mask[[2, 9]] = False
    seen = {}

    def train_step(state, batch):
      seen.update(batch)
      return state, {"loss": jnp.zeros(4), "correct": jnp.zeros(4, bool)}

    def select(state, batch, losses):
      reducible = jnp.where(batch["mask"], losses - batch["irreducible"], -jnp.inf)
      _, order = jax.lax.top_k(reducible, 4)
      return state, order, batch["mask"][order]

    step = selective_backprop.make_selection_step(train_step, graphdef, select,
                                                  augment_images=False)
    State = dataclasses.make_dataclass("State", ["params", "model_state"])
    split = {"image": jnp.asarray(x), "label": jnp.asarray(y), "id": jnp.arange(12) + 50,
             "weight": jnp.ones(12), "irreducible": jnp.asarray(il)}
    carry = {"row": jnp.int32(0), "sums": jnp.zeros(3), "forwarded": jnp.int32(0)}
    _, carry = step(State(params, model_state), carry, split, jnp.arange(12)[None],
                    jnp.asarray(mask)[None], jnp.ones((1, 12)))
    losses = [float(cross_entropy(models.apply(graphdef, params, model_state, x[i:i + 1],
                                               train=False)[0], y[i:i + 1])[0]) for i in range(12)]
    ranked = sorted((i for i in range(12) if mask[i]), key=lambda i: -(losses[i] - il[i]))
    assert sorted(np.asarray(seen["id"]).tolist()) == sorted(i + 50 for i in ranked[:4])
    assert int(carry["forwarded"]) == 10

  def test_irreducible_losses_equal_one_forward_per_example(self):
    model = models.create_model("mlp", num_classes=3, example_shape=(5,), hidden=(6,),
                                rngs=__import__("flax").nnx.Rngs(params=jax.random.key(2)))
    graphdef, params, model_state = models.split(model)
    x = np.random.default_rng(0).normal(size=(23, 5)).astype(np.float32)
    y = np.arange(23) % 3
    got = irreducible.irreducible_losses(graphdef, params, model_state, x, y, batch_size=8)
    for i in range(23):
      logits, _ = models.apply(graphdef, params, model_state, x[i:i + 1], train=False)
      assert got[i] == pytest.approx(float(cross_entropy(logits, y[i:i + 1])[0]), abs=1e-5)

  @pytest.mark.slow
  def test_engine_run_selects_half_without_recompiling(self, data_dir, tmp_path):
    with engine_fixtures.count_traces({"rho_step": 1, "epoch_plan_rho_loss": 1}) as traces:
      result = _run(data_dir, tmp_path / "rho", **{"prioritization": "rho_loss",
                                                   "prioritization_options.rho_candidates": 2,
                                                   "holdout.fraction": 0.2})
    assert traces["rho_step"] == 1 and traces["epoch_plan_rho_loss"] == 1
    n = 128  # 160 minus the 20% holdout (8 of each class of 40)
    assert [r["examples_forwarded"] for r in result.metrics] == [n] * 4
    # 128 candidates in chunks of 2 x 16: every chunk is full, so exactly 16 of each 32.
    assert [r["examples_backpropagated"] for r in result.metrics] == [n // 2] * 4
    scores = result.scores
    assert len(scores["train/example_id"]) == n and len(scores["holdout/example_id"]) == 32
    assert not set(scores["train/example_id"]) & set(scores["holdout/example_id"])
    assert np.isfinite(scores["train/irreducible_loss"]).all()
    assert "holdout_accuracy" in result.final

  def test_needs_a_holdout(self, data_dir, tmp_path):
    with pytest.raises(ConfigError, match="holdout.fraction"):
      _run(data_dir, tmp_path / "x", prioritization="rho_loss")


class TestLabelIssues:

  @pytest.mark.slow
  def test_turnover_columns_are_cleanlab_on_the_flipped_probabilities(self, data_dir, tmp_path):
    import cleanlab.filter  # pylint: disable=g-import-not-at-top
    result = _run(data_dir, tmp_path / "t", **{"turnover.enabled": True,
                                               "turnover.label_issues": True,
                                               "corruption.kind": "symmetric",
                                               "corruption.fraction": 0.25})
    s = result.scores
    want = cleanlab.filter.find_label_issues(s["train/label"], s["train/flipped_prob"]
                                             / s["train/flipped_prob"].sum(1, keepdims=True),
                                             n_jobs=1)
    np.testing.assert_array_equal(s["train/label_issue_turnover"], want)
    quality = s["train/flipped_prob"][np.arange(len(s["train/label"])), s["train/label"]]
    np.testing.assert_allclose(s["train/label_quality_turnover"], quality, rtol=1e-5)

  @pytest.mark.slow
  def test_k_folds_give_every_example_an_out_of_sample_probability(self, data_dir, tmp_path):
    folds = [_run(data_dir, tmp_path / f"fold{k}", **{"holdout.folds": 3, "holdout.fold": k,
                                                      "num_epochs": 1}) for k in range(3)]
    ids, labels, probs = label_issues.cross_validated_probs([f.scores for f in folds])
    assert np.array_equal(ids, np.arange(160)) and probs.shape == (160, 10)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    issues, quality = label_issues.find_label_issues(labels, probs)
    assert issues.shape == (160,) and quality.shape == (160,)

  @pytest.mark.slow
  def test_folds_overlapping_are_refused(self, data_dir, tmp_path):
    fold = _run(data_dir, tmp_path / "f", **{"holdout.folds": 2, "holdout.fold": 0,
                                             "num_epochs": 1})
    with pytest.raises(ValueError, match="held out by two fold runs"):
      label_issues.cross_validated_probs([fold.scores, fold.scores])

  def test_label_issues_need_turnover(self, data_dir, tmp_path):
    with pytest.raises(ConfigError, match="turnover.enabled"):
      _run(data_dir, tmp_path / "x", **{"turnover.label_issues": True})


@pytest.mark.parametrize("overrides, message", [
    ({"holdout.fraction": 1.0}, r"holdout.fraction=1.0 must be in \[0, 1\)"),
    ({"holdout.folds": 1}, r"holdout.folds=1 must be 0 \(off\) or >= 2"),
    ({"holdout.folds": 3, "holdout.fold": 3}, r"holdout.fold=3 must be in \[0, 3\)"),
    ({"holdout.folds": 3, "holdout.fraction": 0.1}, "both set"),
    ({"prioritization": "rho_loss", "holdout.fraction": 0.1,
      "prioritization_options.rho_il_epochs": 0}, "rho_il_epochs=0 must be >= 1"),
    ({"prioritization": "rho_loss", "holdout.fraction": 0.1, "num_seeds": 2},
     "cannot be combined with prioritization=rho_loss"),
])
def test_bad_holdout_and_rho_fields_are_one_line_errors(data_dir, tmp_path, overrides, message):
  with pytest.raises(ConfigError, match=message):
    _run(data_dir, tmp_path / "x", **overrides)
  assert not (tmp_path / "x").exists()
