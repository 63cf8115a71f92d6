"""The noise-or-hard studies end to end on a tiny npz dataset: every number of their reports
recomputed from the runs' scores.npz by hand."""

import numpy as np
import pytest

from experiments import studies
from experiments.studies.label_issues import config as label_issues_config
from experiments.studies.noise_or_hard import config as noise_or_hard_config
from experiments.studies.noise_or_hard import study as noise_or_hard
from regularity_jax.estimators import aum_threshold
from regularity_jax.estimators import label_issues
from regularity_jax.estimators.detection import auroc
from regularity_jax.metrics import difficulty
from regularity_jax.sweeps import StudyError
from regularity_jax.sweeps import subruns
from tests import engine_fixtures


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
  directory = tmp_path_factory.mktemp("tiny")
  engine_fixtures.write_tiny_npz(directory, n_train=120)
  return directory


def tiny_base(base, **overrides):
  return subruns.derive_config(base, {
      "train_subset": 0, "test_subset": 0, "model": "mlp", "model_kwargs.hidden": (16,),
      "num_epochs": 3, "batch_size": 16, "eval_batch_size": 40, "checkpoint_every": 3,
      "learning_rate": 0.05, "num_devices": 1, "progress_bar": False, "plots": False,
      **overrides})


@pytest.fixture(scope="session")
def noise_study(tiny_dir, tmp_path_factory):
  c = noise_or_hard_config.get_config("smoke")
  c.mnist_dir = str(tiny_dir)
  c.seeds = (0, 1)  # two vmapped replicas: the per-seed paths run
  c.base = tiny_base(c.base)
  return studies.run(c, tmp_path_factory.mktemp("noise_or_hard") / "study"), c


@pytest.mark.slow
class TestNoiseOrHard:

  @pytest.mark.slow
  def test_report_and_every_score_of_the_table(self, noise_study):
    result, c = noise_study
    text = engine_fixtures.check_report(result.report, ["noise_or_hard_auroc.png",
                                                        "noise_or_hard_vs_hard.png"])
    assert "The table" in text
    rows = {r["score"]: r for r in result.measured["rows"]}
    assert set(rows) == set(c.scores)
    std = result.records["mnist_symmetric20_standard"].scores
    positives = std["train/label"] != std["train/original_label"]
    assert rows["forgetting"]["corrupted"] == positives.sum() == round(0.2 * 120)
    for name in noise_or_hard.STANDARD_SCORES:  # straight from the registry
      assert rows[name]["auroc"] == pytest.approx(
          auroc(difficulty.from_scores(name, std), positives))
    turn = result.records["mnist_symmetric20_turnover"].scores
    quality = turn["train/label_quality_turnover"]
    assert rows["cleanlab_turnover"]["auroc"] == pytest.approx(auroc(1 - quality, positives))

  def test_aum_flags_combine_each_seed_of_the_two_threshold_runs(self, noise_study):
    result, _ = noise_study
    a1 = result.records["mnist_symmetric20_aum1"].scores
    a2 = result.records["mnist_symmetric20_aum2"].scores
    flags = []
    for k in (0, 1):  # per seed: the flags recomputed from that seed's AUM
      f1 = aum_threshold.flags(a1[f"train/seed{k}/aum"], a1["train/aum_threshold_sample"])
      np.testing.assert_array_equal(f1, a1[f"train/seed{k}/aum_threshold_flag"])
      f2 = aum_threshold.flags(a2[f"train/seed{k}/aum"], a2["train/aum_threshold_sample"])
      flags.append(aum_threshold.combine(f1, f2))
    scores, _ = noise_or_hard.condition_scores(noise_study[1], result.records, "mnist_symmetric20")
    np.testing.assert_allclose(scores["aum_flag"], np.mean(flags, 0))
    assert a1["aum_threshold/cutoff"].shape == (2,)

  def test_hard_clean_and_kfold_scores(self, noise_study):
    result, c = noise_study
    std = result.records["mnist_symmetric20_standard"].scores
    folds = [result.records[f"mnist_symmetric20_fold{k}"].scores for k in range(c.folds)]
    ids, labels, probs = label_issues.cross_validated_probs(folds)
    assert np.array_equal(ids, np.sort(std["train/example_id"]))
    order = np.searchsorted(ids, std["train/example_id"])
    hard = ~std["train/corrupted"] & (np.argmax(probs, 1)[order] != std["train/label"])
    (row,) = [r for r in result.measured["rows"] if r["score"] == "cleanlab_kfold"]
    assert row["hard_clean"] == hard.sum()
    _, quality = label_issues.find_label_issues(labels, probs)
    positives = std["train/label"] != std["train/original_label"]
    assert row["auroc"] == pytest.approx(auroc(1 - quality[order], positives))

  def test_early_scores_are_from_the_stated_epoch(self, noise_study):
    result, c = noise_study
    early = result.records["early:mnist_symmetric20"]
    assert early["el2n"].shape == early["grand"].shape == (120,)
    assert np.all(early["el2n"] >= 0) and np.all(early["el2n"] <= np.sqrt(2) + 1e-6)
    assert (result.records["mnist_symmetric20_standard"].workdir / "checkpoints" /
            str(c.early_epoch)).is_dir()

  def test_seeds_must_be_consecutive(self):
    c = noise_or_hard_config.get_config("smoke")
    c.seeds = (0, 2)
    with pytest.raises(StudyError, match="consecutive"):
      noise_or_hard.check(c)


@pytest.mark.slow
def test_label_issues_study(tiny_dir, tmp_path):
  c = label_issues_config.get_config("smoke")
  c.mnist_dir = str(tiny_dir)
  c.folds = 2
  c.base = tiny_base(c.base)
  result = studies.run(c, tmp_path / "study")
  engine_fixtures.check_report(result.report, ["label_issues.png"])
  turnover_row, kfold_row = result.measured["rows"]
  s = result.records["mnist_symmetric25_seed0_turnover"].scores
  mislabeled = s["train/label"] != s["train/original_label"]
  issues = s["train/label_issue_turnover"]
  assert turnover_row["recall"] == pytest.approx((issues & mislabeled).sum() / mislabeled.sum())
  assert turnover_row["auroc"] == pytest.approx(auroc(1 - s["train/label_quality_turnover"],
                                                      mislabeled))
  assert kfold_row["method"] == "2-fold (2 runs)" and np.isfinite(kfold_row["wall_s"])
