"""The toneva_tables study on its :smoke config (real MNIST, 600 examples, 3 epochs, 2 seeds):
per-seed runs combine like a num_seeds=K run, the curve ends at the final fraction, the report
is recomputed from the small committed results alone, and permuted scores never pass as MNIST's."""

import pathlib
import shutil

import numpy as np
import pytest

from experiments import studies
from experiments.studies.toneva_tables import config as toneva_config
from experiments.studies.toneva_tables import study as toneva
from regularity_jax.data import permutation
from regularity_jax.runs import ScoresFileError
from regularity_jax.runs import scores_file
from regularity_jax.sweeps import StudyError
from regularity_jax.sweeps import subruns
from regularity_jax.training import train_and_evaluate
from tests import engine_fixtures

MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
pytestmark = pytest.mark.skipif(not MNIST.is_dir(), reason="needs ../shared/data/mnist")


def smoke_config(**fields):
  c = toneva_config.get_config("smoke")
  c.mnist_dir = str(MNIST)
  for key, value in fields.items():
    c[key] = value
  return c


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("toneva") / "study"
  return workdir, studies.run(smoke_config(), workdir)


@pytest.fixture(scope="session")
def replicas_run(tmp_path_factory):
  """The num_seeds=2 run of MNIST whose replicas are the smoke's seeds 0 and 1."""
  c = smoke_config()
  overrides = next(o for name, _, _, o in toneva.grid(c) if name == "mnist_seed0")
  run_config = subruns.derive_config(c.base, {**overrides, "num_seeds": 2})
  return train_and_evaluate(run_config, tmp_path_factory.mktemp("k2") / "run").scores


@pytest.mark.slow
class TestSmoke:

  def test_per_seed_runs_combine_like_num_seeds(self, smoke, replicas_run):
    _, result = smoke
    columns, prov = result.measured["combined"]["mnist"]
    assert prov["seeds"] == [0, 1]
    for key in ("train/forgetting_score", "train/unforgettable", "train/forgetting_events",
                "train/never_learned", "train/first_learned", "train/first_forgotten",
                "train/seed0/first_forgotten", "train/seed1/first_forgotten",
                "train/seed1/forgetting_events", "train/example_id"):
      np.testing.assert_array_equal(columns[key], replicas_run[key], err_msg=key)
    assert 0 < np.mean(columns["train/unforgettable"]) < 1  # the equality is not vacuous
    assert (columns["train/first_forgotten"] >= 0).any()

  def test_curve_ends_at_the_final_combined_fraction(self, smoke):
    _, result = smoke
    for dataset, curve in result.measured["curves"].items():
      columns, _ = result.measured["combined"][dataset]
      assert len(curve) == 3
      assert curve[-1] == np.mean(columns["train/unforgettable"])
      row = next(r for r in result.measured["summary"] if r["dataset"] == dataset)
      assert row["unforgettable_combined"] == curve[-1] and row["seeds"] == 2

  def test_permuted_provenance(self, smoke):
    workdir, result = smoke
    perm = permutation.pixel_permutation(0, 784)
    small = toneva.load_small(workdir / "runs" / "permuted_mnist_seed1", "permuted_mnist", 1)
    assert small.provenance["permute_pixels"] == {"seed": 0, "sha256": perm.sha256}
    assert result.records["runs"]["mnist_seed1"].provenance["permute_pixels"] is None
    for dataset, expected in (("mnist", None), ("permuted_mnist", perm.describe())):
      prov = scores_file.load(workdir / dataset / "scores.npz").provenance
      assert prov["permute_pixels"] == expected and prov["seeds"] == [0, 1]

  def test_combined_scores_prune_their_own_dataset_only(self, smoke, tmp_path):
    workdir, _ = smoke
    c = smoke_config()
    overrides = next(o for name, _, _, o in toneva.grid(c) if name == "mnist_seed0")

    def pruned(scores, **more):
      return subruns.derive_config(c.base, {**overrides, "num_epochs": 1, "checkpoint_every": 1,
                                            "pruning.fraction_kept": 0.5,
                                            "pruning.scores_path": str(scores), **more})
    with pytest.raises(ScoresFileError, match="pixels permuted .*unpermuted pixels"):
      train_and_evaluate(pruned(workdir / "permuted_mnist" / "scores.npz"), tmp_path / "no")
    kept = train_and_evaluate(pruned(workdir / "mnist" / "scores.npz"), tmp_path / "yes")
    assert int(kept.scores["train/active"].sum()) == 300

  def test_report_from_the_small_results_alone(self, smoke, tmp_path):
    workdir, result = smoke
    committed = tmp_path / "results"
    shutil.copytree(workdir / "runs", committed / "runs")
    again = studies.run(smoke_config(train=False), committed)
    assert not (committed / "training").exists()
    for key in ("summary", "per_seed"):  # str: NaN (no paper test error) equals itself
      assert str(again.measured[key]) == str(result.measured[key])
    engine_fixtures.check_report(again.report, ["unforgettable_by_epoch.png",
                                                "forgetting_histogram.png", "grid_mnist.png",
                                                "grid_permuted_mnist.png"])
    text = again.report.read_text()
    assert "91.7%" in text and "75.3%" in text and "Checklist (issue 30)" in text
    assert "torch.randperm" in text  # the protocol comparison
    # One run missing: the report says so and measures the rest.
    shutil.rmtree(committed / "runs" / "permuted_mnist_seed1")
    partial = studies.run(smoke_config(train=False), committed)
    assert partial.measured["missing"] == ["permuted_mnist_seed1"]
    assert "**In progress**" in partial.report.read_text()

  def test_timing_recorded(self, smoke):
    _, result = smoke
    for row in result.measured["per_seed"]:
      assert row["cpu_s_per_epoch"] > 0 and row["wall_s_per_epoch"] > 0
      assert 0 <= row["test_error"] <= 1


class TestCheck:

  def test_unknown_run_and_dataset_refused(self):
    with pytest.raises(StudyError, match="only='mnist_seed9' is not a run"):
      toneva.check(smoke_config(only="mnist_seed9"))
    with pytest.raises(StudyError, match="'cifar10' is not one of Toneva's MNIST tables"):
      toneva.check(smoke_config(datasets=("cifar10",)))

  def test_grid_is_ten_single_seed_runs(self):
    c = toneva_config.get_config()
    runs = list(toneva.grid(c))
    assert [name for name, *_ in runs][:2] == ["mnist_seed0", "mnist_seed1"]
    assert len(runs) == 10 and c.base.num_seeds == 1 and c.base.num_epochs == 200
    assert c.base.batch_size == 64 and c.base.learning_rate == 0.01 and c.base.momentum == 0.5
    assert c.base.model == "toneva_cnn" and c.base.model_kwargs.dropout == 0.0
    assert {o["permute_pixels.enabled"] for name, _, _, o in runs
            if name.startswith("permuted")} == {True}
    assert {o["permute_pixels.seed"] for *_, o in runs} == {0}
