"""Studies of turn-over dropout and weighting: report, sub-runs, subset datasets, and every
study's smoke config end to end on a tiny npz dataset (tests/engine_fixtures.py)."""

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from experiments.studies.turnover_influence import config as turnover_influence
from experiments.studies.turnover_informative import config as turnover_informative
from experiments.studies.turnover_labels import config as turnover_labels_config
from experiments.studies.turnover_weighting import config as turnover_weighting
from regularity_jax import data
from experiments import studies
from regularity_jax.data import normalization
from regularity_jax.sweeps import datasets
from regularity_jax.sweeps import report as report_lib
from regularity_jax.sweeps import subruns
from experiments.studies.turnover_labels import study as turnover_labels
from regularity_jax.training import RunResult
from regularity_jax.training import default_config
from tests import engine_fixtures


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
  directory = tmp_path_factory.mktemp("tiny")
  engine_fixtures.write_tiny_npz(directory)  # 96 train / 48 test, 4 classes, 6x6x1
  return directory


def tiny_base(base, **overrides):
  """A study's `base`, shrunk to the tiny dataset (full splits, one small layer, 2 epochs)."""
  # One device and two metric kernels: most of a tiny run's time is XLA compilation.
  return subruns.derive_config(base, {
      "train_subset": 0, "test_subset": 0, "model": "mlp", "model_kwargs.hidden": (16,),
      "num_epochs": 2, "batch_size": 16, "eval_batch_size": 48, "checkpoint_every": 2,
      "learning_rate": 0.05, "num_devices": 1, "tracking.kernels": ("forgetting", "margins"),
      "progress_bar": False, "plots": False, **overrides})


class TestReport:

  def test_format_value(self):
    assert report_lib.format_value(float("nan")) == "n/a"
    assert report_lib.format_value(math.inf) == "never"
    assert report_lib.format_value(3) == "3"
    assert report_lib.format_value(0.123456, ".3f") == "0.123"
    assert report_lib.format_value(0.2, ".0%") == "20%"
    assert report_lib.format_value("a|b") == "a\\|b"

  def test_markdown_table(self):
    table = report_lib.markdown_table([{"a": 1, "b": 0.5}, {"a": 2, "c": "x"}],
                                      formats={"b": ".2f"}, headers={"a": "A"})
    assert table.splitlines() == ["| A | b | c |", "|---|---|---|", "| 1 | 0.50 |  |",
                                  "| 2 |  | x |"]

  def test_mean_std_rows(self):
    rows = [{"k": 1, "v": 1.0}, {"k": 1, "v": 3.0}, {"k": 2, "v": 5.0}, {"k": 2, "v": math.nan}]
    out = report_lib.mean_std_rows(rows, ("k",), ("v",))
    assert out == [{"k": 1, "v": "2 ± 1.4 (n=2)"}, {"k": 2, "v": "5"}]

  def test_write_has_evidence_header_and_figure(self, tmp_path):
    report = report_lib.Report(tmp_path / "study", "Title", seeds=(2, 0))
    report.add_seeds([1])
    report.note("setup", "tiny")
    report.heading("Section")
    report.paragraph("Some text.")
    report.table([{"x": 1.0}])
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    report.figure(fig, "line.png", "a line")
    path = report.write()
    text = path.read_text()
    assert path == tmp_path / "study" / "report.md"
    assert text.startswith("# Title\n")
    for label in ("date", "hardware", "software", "seeds", "wall time", "setup"):
      assert f"- **{label}**:" in text
    assert "- **seeds**: 0, 1, 2" in text
    assert "jax " in text and "CPU cores" in text
    assert "![a line](line.png)" in text and "## Section" in text
    assert (tmp_path / "study" / "line.png").read_bytes()[:4] == b"\x89PNG"


class TestDeriveConfig:

  def test_dotted_overrides_leave_base_alone(self):
    base = default_config()
    derived = subruns.derive_config(base, {"corruption.fraction": 0.2, "seed": 3,
                                           "model_kwargs.hidden": [8, 8]})
    assert derived.corruption.fraction == 0.2 and derived.seed == 3
    assert derived.model_kwargs.hidden == (8, 8)
    assert base.corruption.fraction == 0.0 and base.seed == 0 and "hidden" not in base.model_kwargs

  @pytest.mark.parametrize("key", ["no_such_field", "corruption.no_such", "nope.fraction"])
  def test_unknown_key(self, key):
    with pytest.raises(studies.StudyError, match="override"):
      subruns.derive_config(default_config(), {key: 1})


class TestSubsetDatasets:

  def test_subset_npz_keeps_exactly_the_requested_examples(self, tiny_dir, tmp_path):
    ds = data.load_dataset("mnist", tiny_dir, train_subset=60, subset_seed=1)
    keep = ds.train.ids[::3][[4, 0, 7, 2]]  # any order, ids of the full split
    out = datasets.write_subset_npz(ds, keep, tmp_path / "subset")
    assert out == tmp_path / "subset"
    np.testing.assert_array_equal(datasets.read_subset_ids(out, "mnist"), np.sort(keep))
    reloaded = data.load_dataset("mnist", out)
    rows = np.flatnonzero(np.isin(ds.train.ids, keep))
    assert len(reloaded.train) == len(keep)
    np.testing.assert_array_equal(reloaded.train.labels, ds.train.labels[rows])
    np.testing.assert_array_equal(reloaded.train.ids, np.arange(len(keep)))  # renumbered
    mean, std = normalization.channel_stats(ds.train.images[rows])  # the loader renormalizes
    np.testing.assert_allclose(reloaded.train.images, (ds.train.images[rows] - mean) / std,
                               atol=1e-4)
    np.testing.assert_array_equal(reloaded.test.labels, ds.test.labels)

  def test_subset_keeps_corrupted_labels_and_never_overwrites(self, tiny_dir, tmp_path):
    ds = data.corrupt(data.load_dataset("mnist", tiny_dir), "symmetric", 0.5, seed=0)
    keep = ds.train.ids[ds.train.corrupted][:10]
    out = datasets.write_subset_npz(ds, keep, tmp_path / "s")
    with np.load(out / "mnist.npz") as z:
      assert (z["y_train"] != z["train_original_labels"]).all()
    datasets.write_subset_npz(ds, keep, tmp_path / "s")  # the same subset again: reused
    with pytest.raises(studies.StudyError, match="another subset"):
      datasets.write_subset_npz(ds, keep[:5], tmp_path / "s")
    with pytest.raises(studies.StudyError, match="not training examples"):
      datasets.write_subset_npz(ds, np.array([10_000]), tmp_path / "t")

  def test_long_tail_profile(self):
    labels = np.repeat(np.arange(5), 100)
    ids = np.arange(500) + 7
    kept = datasets.long_tail_ids(labels, ids, imbalance_ratio=16.0, seed=0)
    counts = np.bincount(labels[np.isin(ids, kept)])
    np.testing.assert_array_equal(counts, [100, 50, 25, 12, 6])  # 16 ** (-c / 4) of 100
    assert np.isin(kept, ids).all() and (np.diff(kept) > 0).all()


class TestSubRuns:

  @pytest.mark.slow
  def test_rerun_reuses_a_finished_run_and_refuses_another_config(self, tiny_dir, tmp_path):
    config = tiny_base(default_config(), data_dir=str(tiny_dir), dataset="mnist",
                       num_epochs=1, checkpoint_every=1)
    runs = subruns.SubRuns(tmp_path, log=lambda msg: None)
    first = runs.run("a", config)
    again = subruns.SubRuns(tmp_path, log=lambda msg: None)
    second = again.run("a", config)
    assert runs.trained == ["a"] and again.reused == ["a"] and not again.trained
    assert again.wall_time("a") > 0 and "1 reused" in again.summary()
    assert second.metrics == first.metrics
    np.testing.assert_array_equal(second.scores["train/first_learned"],
                                  first.scores["train/first_learned"])
    other = subruns.derive_config(config, {"seed": 5})
    with pytest.raises(Exception, match="different config"):
      again.run("a", other)

  def test_groups_and_aurocs(self):
    rng = np.random.default_rng(0)
    memorization = rng.normal(size=100)
    scores = {"train/label": np.arange(100) % 3, "train/original_label": np.arange(100) % 3,
              "train/memorization_loss": memorization,
              "train/memorization": np.sign(memorization),
              "train/memorization_loss_mean": memorization}
    groups = turnover_labels.difficulty_groups(scores, easy_quantile=0.5, hard_quantile=0.9)
    assert groups["easy"].sum() == 50 and groups["hard"].sum() == 10
    assert memorization[groups["hard"]].min() > memorization[groups["easy"]].max()
    assert all(math.isnan(v) for v in turnover_labels.memorization_aurocs(scores).values())
    scores["train/label"] = np.where(memorization > 1.0, (scores["train/label"] + 1) % 3,
                                     scores["train/label"])  # the most memorized are mislabeled
    assert set(turnover_labels.difficulty_groups(scores)) == {"clean", "mislabeled"}
    aurocs = turnover_labels.memorization_aurocs(scores)
    assert aurocs["auroc_memorization_loss"] == 1.0
    assert 0.5 < aurocs["auroc_memorization"] < 1.0  # the sign ties clean positives with them

  def test_learned_by_epoch(self):
    curve = turnover_labels.learned_by_epoch(np.array([0, 0, 2, -1]), 4)
    np.testing.assert_allclose(curve, [0.5, 0.5, 0.75, 0.75])
    assert turnover_labels.epochs_to(curve, 0.75) == 3
    assert turnover_labels.epochs_to(curve, 0.9) == math.inf


def slow_auroc(scores, positives):
  """P(random positive > random negative), ties one half: every pair, by hand."""
  pos, neg = scores[positives], scores[~positives]
  return np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg])


class TestStudiesEndToEnd:
  """Each study's smoke config, shrunk to the tiny npz dataset: the numbers of the report are
  recomputed here from the runs' own files."""

  @pytest.mark.slow
  def test_turnover_labels(self, tiny_dir, tmp_path):
    c = turnover_labels_config.get_config("smoke")
    c.mnist_dir = str(tiny_dir)
    c.noise_fractions = (0.5,)  # the clean-run groups are tested in test_groups_and_aurocs
    c.base = tiny_base(c.base)
    result = studies.run(c, tmp_path / "labels")
    engine_fixtures.check_report(result.report, ["fitting_speed_mnist.png",
                                                 "memorization_mnist.png", "auroc.png"])
    run = result.records["mnist_noise50_seed0"]
    with np.load(run.workdir / "scores.npz") as z:
      wrong = z["train/label"] != z["train/original_label"]
      want_auroc = slow_auroc(np.nan_to_num(z["train/memorization_loss"], nan=-np.inf), wrong)
      first_learned = z["train/first_learned"]
    (row,) = result.measured["rows"]
    assert row["mislabeled"] == pytest.approx(wrong.mean())
    assert row["auroc_memorization_loss"] == pytest.approx(want_auroc)
    assert row["test_acc"] == run.metrics[-1]["test_accuracy"]
    clean_fit, noisy_fit = result.measured["fit_rows"]
    assert (clean_fit["group"], noisy_fit["group"]) == ("clean", "mislabeled")
    assert noisy_fit["n"] == wrong.sum()
    assert noisy_fit["learned_end"] == pytest.approx(np.mean(first_learned[wrong] >= 0))

  @pytest.mark.slow
  def test_turnover_informative(self, tiny_dir, tmp_path):
    c = turnover_informative.get_config("smoke")
    c.fashion_mnist_dir = str(tiny_dir)
    c.ks = (8,)
    c.orders = ("most", "least")
    c.base = tiny_base(c.base)
    result = studies.run(c, tmp_path / "informative")
    engine_fixtures.check_report(result.report, ["test_accuracy_vs_k.png", "most_memorized.png"])
    runs = tmp_path / "informative" / "runs"
    cfg = json.loads((runs / "most8_seed0" / "config.json").read_text())
    assert not cfg["turnover"]["enabled"] and cfg["train_subset"] == 0
    with np.load(tmp_path / "informative" / "data" / "most8_seed0" / "fashion_mnist.npz") as z:
      assert len(z["train_ids"]) == 96 - 8
    scores = result.records["score_seed0"].scores
    score = scores[f"train/{c.score}"]
    top8 = np.sort(np.nan_to_num(score, nan=-np.inf))[-8:]  # every label is clean here
    rows = {(r["k"], r["removed"]): r for r in result.measured["rows"]}
    full = rows[(0, "none")]["test_acc"]
    assert full == result.records["full_seed0"].metrics[-1]["test_accuracy"]
    assert rows[(8, "most")]["mean_score_removed"] == pytest.approx(top8.mean(), rel=1e-5)
    for order in ("most", "least"):
      assert rows[(8, order)]["delta"] == pytest.approx(rows[(8, order)]["test_acc"] - full)
    assert result.measured["verdicts"][0].startswith("k=8: test accuracy with the most memorized")

  @pytest.mark.slow
  def test_turnover_weighting(self, tiny_dir, tmp_path):
    c = turnover_weighting.get_config("smoke")
    c.fashion_mnist_dir = str(tiny_dir)
    c.schemes = ("easy_first",)
    c.imbalance_ratio = 4.0
    # Turn-over is tested by the other studies; forgetting events compile faster.
    c.base = tiny_base(c.base, **{"turnover.enabled": False, "weighting.score": "forgetting"})
    result = studies.run(c, tmp_path / "weighting")
    text = engine_fixtures.check_report(result.report, ["test_accuracy_curves.png",
                                                        "test_accuracy_by_scheme.png"])
    assert "long-tail class counts**: 24, 15, 10, 6 (tail = classes 2, 3)" in text
    tail = result.records["long_tail"]
    np.testing.assert_array_equal(tail["counts"], [24, 15, 10, 6])  # 24 * 4 ** (-c / 3)
    rows = {r["condition"]: r for r in result.measured["rows"]}
    assert set(rows) == {"clean", "noisy", "long_tail"}
    noisy = result.records["noisy_easy_first_seed0"].scores
    wrong = noisy["train/label"] != noisy["train/original_label"]
    w = noisy["train/weight"].astype(np.float64)
    assert rows["noisy"]["weight_share_mislabeled"] == pytest.approx(w[wrong].sum() / w.sum())
    long_tail = result.records["long_tail_easy_first_seed0"].scores
    correct = long_tail["test/last_margin"] > 0
    labels = long_tail["test/label"]
    assert rows["long_tail"]["tail_acc"] == pytest.approx(
        np.mean([correct[labels == k].mean() for k in (2, 3)]))

  @pytest.mark.slow
  def test_turnover_influence(self, tiny_dir, tmp_path):
    c = turnover_influence.get_config("smoke")
    c.mnist_dir = str(tiny_dir)
    c.ks = (8,)
    c.removals = ("harmful",)
    c.base = tiny_base(c.base)
    result = studies.run(c, tmp_path / "influence")
    engine_fixtures.check_report(result.report, ["total_influence_histogram.png",
                                                 "most_harmful.png", "val_loss_change_vs_k.png"])
    influence = result.records["influence_seed0/npz"]
    total = influence["train/total_influence"]
    (full, harmful) = result.measured["rows"]
    assert harmful["k"] == 8 and harmful["removed"] == "harmful"
    assert harmful["influence_removed"] == pytest.approx(
        np.sort(total)[:8].mean() / len(influence["test/example_id"]), rel=1e-5)
    assert harmful["val_loss"] == result.records["s0_harmful8_r0"].metrics[-1]["test_loss"]
    assert harmful["delta_loss"] == pytest.approx(harmful["val_loss"] - full["val_loss"])

  def test_unknown_study(self, tmp_path):
    c = turnover_labels_config.get_config("smoke")
    c.study = "nope"
    with pytest.raises(studies.StudyError, match="unknown study"):
      studies.run(c, tmp_path)


class TestMeasureOnRecordedRecords:
  """`measure` is pure: hand-made records in, the report's numbers out."""

  def test_turnover_labels(self):
    c = turnover_labels_config.get_config("smoke")
    c.noise_fractions = (0.5,)
    labels = np.arange(10) % 2
    scores = {"train/label": np.where(np.arange(10) < 4, 1 - labels, labels),
              "train/original_label": labels,
              "train/memorization_loss": np.array([5, 4, 3, 2, 1, 0, 0, 0, 0, 0], np.float32),
              "train/memorization": np.zeros(10), "train/memorization_loss_mean": np.zeros(10),
              "train/first_learned": np.array([3, 3, -1, 5, 0, 0, 1, 1, 0, 2])}
    metrics = [{"epoch": 6, "test_accuracy": 0.5, "eval_train_accuracy": 0.6,
                "train_accuracy": 0.7}]
    records = {"mnist_noise50_seed0": RunResult(workdir=".", metrics=metrics, scores=scores)}
    measured = turnover_labels.measure(c, records)
    (row,) = measured["rows"]
    assert row["mislabeled"] == 0.4 and row["test_acc"] == 0.5
    assert row["auroc_memorization_loss"] == 1.0  # the 4 mislabeled are the most memorized
    clean, wrong = measured["fit_rows"]
    assert wrong["n"] == 4 and wrong["learned_end"] == 0.75  # one never learned
    assert clean["learned_epoch1"] == pytest.approx(3 / 6)


def test_data_dir_names_the_first_dataset():
  import ml_collections
  from regularity_jax.sweeps import subruns
  c = ml_collections.ConfigDict({"datasets": ("mnist", "fashion_mnist"), "data_dir": "/d/m",
                                 "mnist_dir": "/x", "fashion_mnist_dir": "/f"})
  assert subruns.data_dir_for(c, "mnist") == "/d/m"
  assert subruns.data_dir_for(c, "fashion_mnist") == "/f"
  c.data_dir = ""
  assert subruns.data_dir_for(c, "mnist") == "/x"
