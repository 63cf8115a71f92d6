"""Studies of data selection (ideas A and E): time to target on hand-made metric records,
the final-model helper (logits, GraNd against a plain per-example loop), and each study's smoke
config end to end on a tiny npz dataset (tests/engine_fixtures.py)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import noise_prioritization as noise_training
from experiments.studies.noise_prioritization import config as noise_prioritization_study
from experiments.studies.removal_curves import config as removal_config
from experiments.studies.test_selection import config as test_selection_config
from regularity_jax import models
from experiments import studies
from regularity_jax.runs import scores_file
from regularity_jax.metrics.losses import cross_entropy
from regularity_jax.sweeps import final_model
from experiments.studies.noise_prioritization import study as noise_prioritization
from experiments.studies.removal_curves import study as removal_curves
from regularity_jax.sweeps import subruns
from experiments.studies.test_selection import study as test_selection
from regularity_jax.training import RunResult
from tests import engine_fixtures
from tests.test_studies_turnover import tiny_base


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
  directory = tmp_path_factory.mktemp("tiny_selection")
  engine_fixtures.write_tiny_npz(directory)  # 96 train / 48 test, 4 classes, 6x6x1
  return directory


def record(epoch, acc, backprops=100, forwards=None, seconds=1.0, steps_per_epoch=10):
  return {"epoch": epoch, "step": epoch * steps_per_epoch, "test_accuracy": acc,
          "examples_backpropagated": backprops, "examples_forwarded": forwards or backprops,
          "train_time_s": seconds}


class TestTimeToTarget:

  def test_first_epoch_reaching_the_target_with_cumulative_costs(self):
    records = [record(1, 0.5, 100, 200, 2.0), record(2, 0.7, 50, 200, 0.5),
               record(3, 0.9, 50, 200, 0.5), record(4, 0.95, 50, 200, 0.5)]
    hit = noise_prioritization.time_to_target(records, 0.9)
    assert hit["epoch"] == 3 and hit["step"] == 30
    assert hit["examples_backpropagated"] == 200 and hit["examples_forwarded"] == 600
    assert hit["train_time_s"] == pytest.approx(3.0)
    # interpolated between (0.7, 150 backprops) and (0.9, 200): exactly at the crossing
    assert hit["examples_backpropagated_interp"] == pytest.approx(200.0)
    mid = noise_prioritization.time_to_target(records, 0.8)
    assert mid["epoch"] == 3 and mid["examples_backpropagated_interp"] == pytest.approx(175.0)

  def test_reached_at_the_first_evaluation_is_not_interpolated(self):
    hit = noise_prioritization.time_to_target([record(1, 0.9, 100)], 0.5)
    assert hit["epoch"] == 1 and hit["examples_backpropagated_interp"] == 100

  def test_never_reached_is_inf(self):
    hit = noise_prioritization.time_to_target([record(1, 0.5), record(2, 0.6)], 0.9)
    assert all(math.isinf(v) for v in hit.values())

  def test_epochs_without_evaluation_still_count_their_cost(self):
    records = [record(1, 0.5), {**record(2, 0.0), "test_accuracy": None}, record(3, 0.95)]
    del records[1]["test_accuracy"]
    hit = noise_prioritization.time_to_target(records, 0.9)
    assert hit["epoch"] == 3 and hit["examples_backpropagated"] == 300

  def test_speedup_ratio(self):
    assert noise_prioritization._ratio(200.0, 100.0) == 2.0
    assert noise_prioritization._ratio(200.0, math.inf) == 0.0  # method never reached it
    assert math.isinf(noise_prioritization._ratio(math.inf, 100.0))

  def test_noisy_share(self):
    scores = {"train/corrupted": np.array([True, False, False, False]),
              "train/observations": np.array([6, 2, 1, 1])}
    assert noise_prioritization.noisy_share(scores) == (0.6, 0.25)


class TestRemovalHelpers:

  def test_removable_fraction(self):
    x = np.array([0.0, 0.25, 0.5, 0.75])
    assert removal_curves.removable_fraction(x, np.array([0.9, 0.9, 0.895, 0.8]), 0.01) == 0.5
    assert removal_curves.removable_fraction(x, np.array([0.9, 0.7, 0.9, 0.9]), 0.01) == 0.0
    assert removal_curves.removable_fraction(x, np.array([0.9, 0.91, 0.9, 0.9]), 0.01) == 0.75

  def test_rank_correlation_of_a_score_with_itself_and_its_reverse(self):
    n = 50
    rng = np.random.default_rng(0)
    table = {"train/mean_el2n": rng.random(n), "train/aum": rng.random(n)}
    table["train/grand"] = -table["train/mean_el2n"]
    rows = removal_curves.rank_correlations(table, ["el2n", "grand"])
    assert rows[0]["el2n"] == pytest.approx(1.0) and rows[0]["grand"] == pytest.approx(-1.0)


  def test_scores_table_aligns_the_turnover_run_by_id(self):
    full = RunResult(workdir=".", metrics=[], scores={
        "train/example_id": np.array([5, 7, 9]), "train/mean_el2n": np.array([0.1, 0.2, 0.3])})
    turnover = RunResult(workdir=".", metrics=[], scores={
        "train/example_id": np.array([9, 5, 7]),
        "train/memorization_loss": np.array([3.0, 1.0, 2.0])})
    table = removal_curves.scores_table(full, grand=np.array([1.0, 2.0, 3.0]),
                                        turnover=turnover)
    np.testing.assert_array_equal(table["train/memorization_loss"], [1.0, 2.0, 3.0])
    assert table["train/grand"].dtype == np.float32
    other = RunResult(workdir=".", metrics=[], scores={
        "train/example_id": np.array([1, 5, 7]), "train/memorization_loss": np.zeros(3)})
    with pytest.raises(studies.StudyError, match="other examples"):
      removal_curves.scores_table(full, turnover=other)

  def test_write_table_never_overwrites(self, tmp_path):
    table = {"train/example_id": np.arange(3), "train/label": np.zeros(3, np.int32),
             "train/grand": np.float32([1, np.nan, 2])}
    prov = {"format": 1, "dataset": "mnist"}
    path = removal_curves.write_table(table, tmp_path / "s.npz", prov)
    assert removal_curves.write_table(table, path, prov) == path  # same scores (NaN too): reused
    assert scores_file.load(path).provenance == prov  # the file pruning reads has provenance
    with pytest.raises(studies.StudyError, match="other scores"):
      removal_curves.write_table({**table, "train/grand": np.float32([0, 0, 0])}, path, prov)


class TestFinalModel:

  @pytest.mark.slow
  def test_logits_and_grand_against_a_plain_loop(self, tiny_dir, tmp_path):
    config = tiny_base(engine_fixtures.tiny_config(tiny_dir))
    result = subruns.SubRuns(tmp_path, log=lambda m: None).run("run", config)
    model = final_model.load(config, result.workdir)
    assert model.epoch == config.num_epochs
    test = model.dataset.test
    logits = final_model.predict(model, test.images, batch_size=20)  # 48 rows: padded batch
    accuracy = float(np.mean(logits.argmax(1) == test.labels))
    assert accuracy == pytest.approx(subruns.final_metric(result, "test_accuracy"))
    np.testing.assert_allclose(logits.max(1) - np.sort(logits, 1)[:, -2],
                               np.abs(result.scores["test/last_margin"]), rtol=1e-4, atol=1e-4)
    train = model.dataset.train
    fast = final_model.grand(model, train.images[:10], train.labels[:10], batch_size=4,
                             chunk_size=2)

    def loss(params, x, y):
      out, _ = models.apply(model.graphdef, params, model.model_state, x[None], train=False)
      return cross_entropy(out, jnp.asarray([y]))[0]

    grad = jax.jit(jax.grad(loss))
    plain = [float(jnp.sqrt(sum(jnp.sum(g ** 2) for g in jax.tree.leaves(
        grad(model.params, jnp.asarray(train.images[i]), jnp.int32(train.labels[i]))))))
             for i in range(10)]
    np.testing.assert_allclose(fast, plain, rtol=1e-4)

  def test_missing_checkpoint(self, tmp_path):
    with pytest.raises(studies.StudyError, match="no checkpoint"):
      final_model.load(engine_fixtures.tiny_config(tmp_path), tmp_path)


class TestStudiesEndToEnd:
  """Each study's smoke config, shrunk to the tiny npz dataset."""

  @pytest.mark.slow
  def test_removal_curves(self, tiny_dir, tmp_path):
    c = removal_config.get_config("smoke")
    c.mnist_dir = str(tiny_dir)
    c.scores = ("grand",)  # two runs; the turn-over merge is tested in TestRemovalHelpers
    c.base = tiny_base(c.base, eval_every=2)
    result = studies.run(c, tmp_path / "removal")
    text = engine_fixtures.check_report(result.report, ["removal_curves.png"])
    assert "## Spearman" in text
    with np.load(tmp_path / "removal" / "scores" / "mnist_seed0.npz") as z:
      assert z["train/grand"].shape == (96,) and np.all(z["train/grand"] >= 0)
      hardest = z["train/example_id"][np.argsort(-z["train/grand"], kind="stable")[:48]]
    runs = sorted(p.name for p in (tmp_path / "removal" / "runs").iterdir() if p.is_dir())
    assert runs == ["mnist_full_seed0", "mnist_grand_removed50_seed0"]
    pruned = result.records["mnist_grand_removed50_seed0"]
    kept_ids = pruned.scores["train/example_id"][pruned.scores["train/active"]]
    np.testing.assert_array_equal(np.sort(kept_ids), np.sort(hardest))  # easiest removed
    zero, half = result.measured["rows"]
    assert (zero["removed"], zero["kept"], half["removed"], half["kept"]) == (0.0, 96, 0.5, 48)
    assert zero["test_acc"] == result.records["mnist_full_seed0"].metrics[-1]["test_accuracy"]
    assert half["test_acc"] == pruned.metrics[-1]["test_accuracy"]
    (claim,) = result.measured["claims"]
    assert claim["removable"] == removal_curves.removable_fraction(
        np.array([0.0, 0.5]), np.array([zero["test_acc"], half["test_acc"]]), c.tolerance)

  @pytest.mark.slow
  def test_noise_prioritization_rho_loss_and_aum_filtered(self, tiny_dir, tmp_path):
    c = noise_prioritization_study.get_config("smoke")
    c.mnist_dir = str(tiny_dir)
    c.include_clean = False
    c.methods = ("uniform", "rho_loss", "aum_filtered")
    c.base = tiny_base(c.base, num_epochs=2, checkpoint_every=2)
    result = studies.run(c, tmp_path / "noise")
    rows = {r["method"]: r for r in result.measured["rows"]}
    assert set(rows) == {"uniform", "rho_loss", "aum_filtered"}
    rho = result.records["random_labels_50_rho_loss_seed0"]
    assert len(rho.metrics) == 2 * c.base.prioritization_options.rho_candidates  # same budget
    second = next((tmp_path / "noise" / "runs").glob("random_labels_50_aumset2_seed0"))
    flags = np.load(second / "scores.npz")["train/aum_flag"]
    filtered = result.records["random_labels_50_aum_filtered_seed0"].scores
    kept = filtered["train/active"]
    assert kept.sum() == (flags == 0).sum()  # exactly the unflagged examples train
    assert not (kept & (flags == 1)).any()

  @pytest.mark.slow
  def test_noise_prioritization(self, tiny_dir, tmp_path):
    c = noise_prioritization_study.get_config("smoke")
    c.mnist_dir = str(tiny_dir)
    c.include_clean = False  # two runs: uniform and Selective-Backprop, 50% random labels
    c.methods = ("uniform", "selective_backprop")
    c.base = tiny_base(c.base, num_epochs=3, checkpoint_every=3)
    result = studies.run(c, tmp_path / "noise")
    engine_fixtures.check_report(result.report, ["accuracy_vs_backprops.png",
                                                 "speedup_by_condition.png"])
    rows = {r["method"]: r for r in result.measured["rows"]}
    assert set(rows) == {"uniform", "selective_backprop"}
    assert rows["uniform"]["speedup"] == 1.0 and rows["uniform"]["final_minus_uniform"] == 0
    sb = result.records["random_labels_50_selective_backprop_seed0"]
    assert rows["selective_backprop"]["backprops_total"] == sum(
        r["examples_backpropagated"] for r in sb.metrics)
    n_train = len(sb.scores["train/example_id"])  # 96 minus the config's 20% holdout
    assert n_train == 96 - len(sb.scores["holdout/example_id"]) and n_train < 96
    assert rows["selective_backprop"]["forwards_total"] == 3 * n_train
    assert rows["selective_backprop"]["final_minus_uniform"] == pytest.approx(
        sb.metrics[-1]["test_accuracy"] - rows["uniform"]["final_acc"], abs=1e-6)
    obs = sb.scores["train/observations"].astype(float)
    corrupted = sb.scores["train/corrupted"]
    assert rows["selective_backprop"]["noisy_share"] == pytest.approx(obs[corrupted].sum() /
                                                                      obs.sum())

  def test_noise_training_config_sets_the_method_by_kind(self):
    c = noise_training.get_config("smoke")
    assert c.prioritization == "uniform" and c.eval_every == 1
    c.prioritization = "selective_backprop"  # what --config.prioritization= does
    from regularity_jax.training import config as config_lib  # pylint: disable=g-import-not-at-top
    config_lib.validate(c)

  @pytest.mark.slow
  def test_test_selection(self, tiny_dir, tmp_path):
    c = test_selection_config.get_config("smoke")
    c.mnist_dir = str(tiny_dir)
    c.base = tiny_base(c.base, **{"tracking.kernels": ("forgetting", "cumulative", "margins")})
    result = studies.run(c, tmp_path / "test_selection")
    engine_fixtures.check_report(result.report, ["reliability_mnist_cbgl.png",
                                                 "reliability_mnist_malgeneralizing.png",
                                                 "least_regular_mnist.png"])
    test = result.records["test:mnist"]
    for r in result.measured["rows"]:
      probs = result.records[f"probs:mnist_seed{r['model_seed']}"]
      if r["subset"] == "all":
        assert r["n"] == 48
        assert r["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == test.labels))
      else:
        assert r["n"] == round(r["fraction"] * 48)
    # The model's own run: its accuracy on "all" is the run's last test accuracy.
    same = next(r for r in result.measured["rows"] if r["model"] == "same" and r["subset"] == "all")
    run = result.records[f"mnist_seed{same['seed']}"]
    assert same["accuracy"] == pytest.approx(run.metrics[-1]["test_accuracy"])

  def test_bad_study_parameters(self, tmp_path):
    c = removal_config.get_config("smoke")
    c.scores = ("nope",)
    with pytest.raises(studies.StudyError, match="unknown score"):
      studies.run(c, tmp_path)
    c = removal_config.get_config("smoke")
    c.base = tiny_base(c.base)  # forgetting and margins only
    c.scores = ("el2n",)
    with pytest.raises(studies.StudyError, match="'losses' kernel"):
      studies.run(c, tmp_path)
    c = test_selection_config.get_config("smoke")
    c.base = tiny_base(c.base)
    with pytest.raises(studies.StudyError, match="'cumulative' kernel"):
      studies.run(c, tmp_path)
    c = noise_prioritization_study.get_config("smoke")
    c.methods = ("infobatch",)
    with pytest.raises(studies.StudyError, match="uniform"):
      studies.run(c, tmp_path)


def test_subset_metrics():
  probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]], np.float32)
  labels = np.array([0, 1, 1])
  m = test_selection.subset_metrics(probs, labels, np.array([0, 1, 2]), num_bins=10)
  assert m["n"] == 3 and m["accuracy"] == pytest.approx(2 / 3)
  # bins: 0.9 (correct), 0.6 (wrong), 0.8 (correct) -> |1-0.9| + |0-0.6| + |1-0.8| over 3
  assert m["ece"] == pytest.approx((0.1 + 0.6 + 0.2) / 3, abs=1e-6)
