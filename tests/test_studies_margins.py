"""Studies of margin distributions (idea B): Kendall's tau-b, per-class Jaccard overlap, the
paired comparison, and every study's smoke config end to end on a tiny npz dataset
(tests/engine_fixtures.py)."""

import json

import numpy as np
import pytest
from scipy import stats

from experiments.studies.margins_auc_generalization import config as margins_auc_generalization
from experiments.configs import margins_mnist
from experiments.studies.margins_overlap import config as margins_overlap
from experiments.studies.margins_reduction import config as margins_reduction
from experiments import studies
from experiments.studies.margins_overlap import study as margin_overlap
from experiments.studies.margins_reduction import study as margin_reduction
from regularity_jax.sweeps import statistics
from regularity_jax.sweeps import subruns
from regularity_jax.training import config as config_lib
from tests import engine_fixtures


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
  directory = tmp_path_factory.mktemp("tiny")
  engine_fixtures.write_tiny_npz(directory)  # 96 train / 48 test, 4 classes, 6x6x1
  return directory


def tiny_base(base, **overrides):
  """A study's `base`, shrunk to the tiny dataset (full splits, one small layer)."""
  return subruns.derive_config(base, {
      "train_subset": 0, "test_subset": 0, "model": "mlp", "model_kwargs.hidden": (16,),
      "num_epochs": 3, "batch_size": 16, "eval_batch_size": 48, "checkpoint_every": 3,
      "learning_rate": 0.05, "progress_bar": False, "plots": False, **overrides})


class TestKendallTauB:

  def test_hand_counted_example_with_ties(self):
    # Pairs of (x, y) = (1,1) (2,3) (2,2) (3,2): concordant (1,2) (1,3) (1,4); discordant
    # (2,4); (2,3) tied in x, (3,4) tied in y. n0 = 6, n_x = n_y = 1:
    # tau_b = (3 - 1) / sqrt((6 - 1) (6 - 1)) = 0.4.
    assert statistics.kendall_tau_b([1, 2, 2, 3], [1, 3, 2, 2]) == pytest.approx(0.4)

  def test_hand_counted_example_without_ties(self):
    # x sorted; y = 3 1 2 5 4: discordant pairs (3,1) (3,2) (5,4), 7 concordant of 10.
    assert statistics.kendall_tau_b([1, 2, 3, 4, 5], [3, 1, 2, 5, 4]) == \
        pytest.approx((7 - 3) / 10)

  def test_extremes_and_degenerate(self):
    assert statistics.kendall_tau_b([1, 2, 3], [10, 20, 30]) == 1.0
    assert statistics.kendall_tau_b([1, 2, 3], [3, 2, 1]) == -1.0
    assert np.isnan(statistics.kendall_tau_b([1, 1, 1], [1, 2, 3]))
    assert statistics.kendall_tau_b([1, 2, np.nan, 3], [1, 2, 0, 3]) == 1.0

  def test_against_scipy(self):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(5):
      x, y = rng.integers(0, 4, 15), rng.integers(0, 5, 15)  # many ties
      expected = stats.kendalltau(x, y, variant="b").statistic
      assert statistics.kendall_tau_b(x, y) == pytest.approx(expected)

  def test_permutation_p_value(self):
    x = np.arange(8.0)
    assert statistics.permutation_p_value(x, x, num_permutations=2000) < 0.01
    p = statistics.permutation_p_value(x, [3, 1, 4, 1, 5, 9, 2, 6],
                                                  num_permutations=2000)
    assert 0.1 < p <= 1.0


class TestJaccard:

  def test_whole_sets(self):
    assert margin_overlap.jaccard(np.array([1, 2, 3]), np.array([2, 3, 4, 5])) == 2 / 5
    assert np.isnan(margin_overlap.jaccard(np.array([], int), np.array([], int)))

  def test_per_class_on_hand_made_sets(self):
    ids = np.array([10, 11, 12, 13, 14, 15, 16, 17])
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    a = np.array([10, 11, 13, 16])
    b = np.array([11, 12, 13, 14])
    # class 0: {10, 11} vs {11, 12} -> 1/3; class 1: {13} vs {13, 14} -> 1/2;
    # class 2: {16} vs {} -> 0; class 3: nothing kept by either -> NaN.
    out = margin_overlap.jaccard_per_class(a, b, ids, labels, num_classes=4)
    np.testing.assert_allclose(out[:3], [1 / 3, 1 / 2, 0.0])
    assert np.isnan(out[3])
    by_class, whole = margin_overlap.mean_pairwise([a, b, a], ids, labels, 3)
    # pairs (a, b), (a, a), (b, a): per class mean of (1/3, 1, 1/3) ...
    np.testing.assert_allclose(by_class, [(1 / 3 + 1 + 1 / 3) / 3, (1 / 2 + 1 + 1 / 2) / 3,
                                          (0 + 1 + 0) / 3])
    assert whole == pytest.approx((2 / 6 + 1 + 2 / 6) / 3)

  def test_unknown_ids_are_refused(self):
    with pytest.raises(studies.StudyError, match="not training examples"):
      margin_overlap.jaccard_per_class(np.array([99]), np.array([1]), np.array([1]),
                                       np.array([0]), 1)

  def test_random_expectation(self):
    # Two subsets of 100 out of 1,000: E|A n B| = 10, J = 10 / 190.
    assert margin_overlap.expected_random_jaccard(100, 100, 1000) == pytest.approx(10 / 190)


class TestReductionHelpers:

  def test_names(self):
    assert margin_reduction.run_name("mnist", "margin", 0.005, 2) == "mnist_margin0p5_seed2"
    assert margin_reduction.run_name("mnist", "full", None, 0) == "mnist_full_seed0"

  def test_run_config_applies_dataset_overrides(self):
    c = margins_reduction.get_config("cpu")
    cfg = margin_reduction.run_config(c, "fashion_mnist", "random", 0.01, 1)
    assert cfg.reduction.enabled and cfg.reduction.by == "random"
    assert cfg.reduction.fraction == 0.01 and cfg.reduction.threshold == 0.97
    assert cfg.model_kwargs.hidden == (512,) and cfg.seed == 1
    full = margin_reduction.run_config(c, "mnist", "full", None, 0)
    assert not full.reduction.enabled and full.reduction.threshold == 1.0
    config_lib.validate(cfg)

  def test_paired_rows(self):
    rows = [{"dataset": "d", "method": "full", "fraction": 1.0, "seed": s, "test_acc": a,
             "train_acc": 1.0, "presented": 100, "train_s": 10.0, "eval_s": 10.0,
             "start_epoch": float("nan"), "test_at_start": float("nan")}
            for s, a in ((0, 0.90), (1, 0.92))]
    rows += [{"dataset": "d", "method": "margin", "fraction": 0.01, "seed": s, "test_acc": a,
              "train_acc": 0.98, "presented": 20, "train_s": 2.0, "eval_s": 8.0,
              "start_epoch": 3.0, "test_at_start": 0.88}
             for s, a in ((0, 0.89), (1, 0.90))]
    (p,) = margin_reduction.paired_rows(rows, tolerance=0.02)
    assert p["drop_mean"] == pytest.approx(0.015) and p["within_tolerance"]
    assert p["full_gain_since_start"] == pytest.approx(0.03)
    assert p["train_acc_drop"] == pytest.approx(0.02)
    half = 12.706 * np.std([0.01, 0.02], ddof=1) / np.sqrt(2)  # t(0.975, 1 df), a table's
    assert p["drop_ci_high"] == pytest.approx(0.015 + half, rel=1e-4)
    assert p["presented_vs_full"] == pytest.approx(0.2)
    assert p["total_s_vs_full"] == pytest.approx(0.5)
    assert margin_reduction.t975(2) == pytest.approx(4.303, abs=1e-3)  # Student's t tables
    assert margin_reduction.t975(30) == pytest.approx(2.042, abs=1e-3)


def test_margins_mnist_training_config():
  for arg in ("", "smoke"):
    c = margins_mnist.get_config(arg)
    config_lib.validate(c)
    assert c.reduction.enabled and c.reduction.fraction == 0.01 and c.eval_every == 1


class TestStudiesEndToEnd:
  """Each study's smoke config, shrunk to the tiny npz dataset: the numbers of the report are
  recomputed here from the runs' own files."""

  @pytest.mark.slow
  def test_margins_auc_generalization(self, tiny_dir, tmp_path):
    c = margins_auc_generalization.get_config("smoke")
    c.mnist_dir = str(tiny_dir)
    c.noise_fractions = (0.0, 0.25, 0.5)
    c.widths = ((8,),)
    c.num_permutations = 200
    c.base = tiny_base(c.base)
    result = studies.run(c, tmp_path / "auc")
    engine_fixtures.check_report(result.report, ["auc_vs_generalization.png",
                                                 "margin_distributions.png"])
    assert len([p for p in (tmp_path / "auc" / "runs").iterdir() if p.is_dir()]) == 3
    rows = result.measured["rows"]
    for row, name in zip(rows, [n for n in result.records]):
      final = result.records[name].metrics[-1]
      assert row["margin_auc"] == final["margin_auc"]
      assert row["gap"] == pytest.approx(final["eval_train_accuracy"] - final["test_accuracy"])
    tau = next(t for t in result.measured["taus"] if t["runs"] == "all"
               and t["measure"] == "margin_auc")
    assert tau["n"] == 3
    assert tau["tau_test_acc"] == pytest.approx(stats.kendalltau(
        [r["margin_auc"] for r in rows], [r["test_acc"] for r in rows]).statistic, nan_ok=True)

  @pytest.mark.slow
  def test_margins_reduction_then_overlap_reuses_its_runs(self, tiny_dir, tmp_path):
    c = margins_reduction.get_config("smoke")
    c.mnist_dir = str(tiny_dir)
    c.fractions = (0.25,)
    c.base = tiny_base(c.base, num_epochs=4, checkpoint_every=4, **{"reduction.threshold": 0.5})
    result = studies.run(c, tmp_path / "red")
    text = engine_fixtures.check_report(result.report, ["reduction_mnist.png"])
    assert "CIFAR-10 with ResNet-18" in text
    runs = tmp_path / "red" / "runs"
    assert sorted(p.name for p in runs.iterdir() if p.is_dir()) == sorted(
        f"mnist_{m}_seed{s}" for m in ("full", "margin25", "random25") for s in (0, 1))
    records = [json.loads(line) for line in
               (runs / "mnist_margin25_seed0" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["train_fraction_used"] == 0.25  # the tiny data separate at 50%
    paired = next(p for p in result.measured["paired"] if p["method"] == "margin")
    drops = [result.records[f"mnist_full_seed{s}"].metrics[-1]["test_accuracy"]
             - result.records[f"mnist_margin25_seed{s}"].metrics[-1]["test_accuracy"]
             for s in (0, 1)]
    assert paired["n"] == 2 and paired["drop_mean"] == pytest.approx(np.mean(drops))
    half = stats.t.ppf(0.975, 1) * np.std(drops, ddof=1) / np.sqrt(2)
    assert paired["drop_ci_high"] == pytest.approx(np.mean(drops) + half)

    o = margins_overlap.get_config("smoke")
    o.mnist_dir = str(tiny_dir)
    o.fractions = (0.25,)
    o.base = c.base
    o.runs_from = str(tmp_path / "red")
    overlap = studies.run(o, tmp_path / "overlap")
    text = engine_fixtures.check_report(overlap.report, ["jaccard_mnist.png",
                                                         "kept_classes_mnist.png"])
    assert "(0 trained by this invocation, 4 reused" in text
    assert not (tmp_path / "overlap" / "runs").exists()
    last = [np.load(sorted((runs / f"mnist_margin25_seed{s}" / "reduction").glob("*.npy"))[-1])
            for s in (0, 1)]
    jaccard = len(np.intersect1d(*last)) / len(np.union1d(*last))
    row = next(r for r in overlap.measured["rows"] if r["method"] == "margin"
               and r["selection"] == "last")
    assert row["kept"] == 24 and row["all"] == pytest.approx(jaccard)

  def test_overlap_refuses_a_missing_source(self, tmp_path):
    o = margins_overlap.get_config("smoke")
    o.runs_from = str(tmp_path / "nothing")
    with pytest.raises(studies.StudyError, match="runs_from"):
      studies.run(o, tmp_path / "o")
