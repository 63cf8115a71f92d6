"""Normalized margins, margin AUC and dynamic training-set reduction in the engine."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regularity_jax.data import batching
from regularity_jax.training import ConfigError
from regularity_jax.training import train_and_evaluate
from regularity_jax.training.features.reduction import select_lowest_margin
from tests import engine_fixtures


class TestSelectLowestMargin:

  def test_keeps_exactly_the_lowest(self):
    margins = jnp.array([0.5, -1.0, 3.0, 0.2, jnp.nan, 0.2, 7.0])
    kept = select_lowest_margin(margins, jnp.int32(3), jax.random.key(0), "margin")
    np.testing.assert_array_equal(kept, [False, True, False, True, False, True, False])

  def test_nan_is_never_kept_before_finite(self):
    kept = select_lowest_margin(jnp.array([jnp.nan, 1.0, 2.0]), jnp.int32(2), jax.random.key(0),
                                "margin")
    np.testing.assert_array_equal(kept, [False, True, True])

  def test_random_control_has_the_same_size(self):
    kept = select_lowest_margin(jnp.arange(50.0), jnp.int32(7), jax.random.key(3), "random")
    assert int(kept.sum()) == 7 and not np.array_equal(np.flatnonzero(kept), np.arange(7))


def test_epoch_batches_never_retrace_when_the_subset_changes():
  fn = jax.jit(chex.assert_max_traces(
      lambda key, active: batching.epoch_batches(key, 40, 8, active), n=1))
  for k in range(5):
    active = jax.random.bernoulli(jax.random.key(k), 0.3, (40,))
    positions, mask = fn(jax.random.key(k), active)
    assert sorted(np.asarray(positions)[np.asarray(mask)].tolist()) == \
        np.flatnonzero(active).tolist()


@pytest.fixture(scope="session")
def run(tmp_path_factory):
  d = tmp_path_factory.mktemp("data")
  engine_fixtures.write_tiny_npz(d, n_train=128)
  config = engine_fixtures.tiny_config(d, num_epochs=8, plots=True, **{
      "reduction.enabled": True, "reduction.threshold": 0.5, "reduction.fraction": 0.25,
      "reduction.every": 2})
  once = {"epoch_step": 1, "epoch_plan_uniform": 1, "reselect": 1}
  with engine_fixtures.count_traces(once) as traces:
    result = train_and_evaluate(config, tmp_path_factory.mktemp("runs") / "red")
  result.traces = traces
  return result


@pytest.mark.slow
class TestReductionRun:

  @pytest.mark.slow
  def test_metrics_carry_auc_and_fraction(self, run):
    records = [json.loads(l) for l in (run.workdir / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["margin_auc"]) and "train_fraction_used" in r for r in records)
    fractions = [r["train_fraction_used"] for r in records]
    assert fractions[0] == 1.0 and fractions[-1] == 0.25
    assert all(len(r["train_margin_quantiles"]) == 21 for r in records)
    reduced = [r for r in records if r["train_fraction_used"] < 1]
    assert all(r["examples_presented"] == 32 for r in reduced)

  def test_kept_ids_are_the_lowest_margins_of_that_evaluation(self, run):
    files = sorted((run.workdir / "reduction").glob("kept_ids_epoch_*.npy"))
    assert files and files[-1].name == "kept_ids_epoch_0008.npy"  # re-selected at the end
    kept = np.load(files[-1])
    margins = run.scores["train/eval_last_margin"]  # the evaluation of epoch 8
    expected = run.scores["train/example_id"][np.argsort(margins, kind="stable")[:32]]
    np.testing.assert_array_equal(np.sort(kept), np.sort(expected))
    np.testing.assert_array_equal(np.sort(run.scores["train/example_id"][run.scores["train/active"]]),
                                  np.sort(kept))

  def test_never_recompiles(self, run):
    # chex.assert_max_traces would have failed the run on a second trace.
    assert run.traces["epoch_step"] == 1
    assert run.traces["epoch_plan_uniform"] == 1
    assert run.traces["reselect"] == 1
    assert run.traces["evaluate"] == 2  # once per split shape

  def test_normalized_margins_in_scores(self, run):
    s = run.scores
    assert s["train/normalized_margin"].shape == (128,) and s["test/normalized_margin"].shape == (48,)
    ratio = s["train/eval_last_margin"] / s["train/normalized_margin"]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)  # one network norm for all examples
    assert (run.workdir / "plots" / "margin_distribution_over_time.png").exists()


def test_reduction_every_must_follow_evaluations(tmp_path):
  engine_fixtures.write_tiny_npz(tmp_path / "d")
  config = engine_fixtures.tiny_config(tmp_path / "d", eval_every=2, **{
      "reduction.enabled": True, "reduction.every": 3})
  with pytest.raises(ConfigError, match="multiple of eval_every=2"):
    train_and_evaluate(config, tmp_path / "w")
