"""K seeds in one vmapped program: replica k equals the single run with seed + k."""

import numpy as np
import pytest

from regularity_jax.estimators import bias_variance
from regularity_jax.training import ConfigError
from regularity_jax.metrics import seeds
from regularity_jax.training import train_and_evaluate
from tests import engine_fixtures


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp("data")
  # 10 named classes (4 used): the 10-logit head these tests were measured with
  engine_fixtures.write_tiny_npz(d, class_names=[str(c) for c in range(10)])
  return d


@pytest.mark.slow
def test_replicas_equal_sequential_runs(data_dir, tmp_path):
  overrides = {"num_epochs": 3, "model_kwargs.dropout": 0.2}
  config = engine_fixtures.tiny_config(data_dir, num_seeds=3, **overrides)
  with engine_fixtures.count_traces({"epoch_step": 1}) as traces:
    together = train_and_evaluate(config, tmp_path / "k3")
  assert traces["epoch_step"] == 1
  for k in (0, 2):
    alone = train_and_evaluate(engine_fixtures.tiny_config(data_dir, seed=k, **overrides),
                               tmp_path / f"seed{k}")
    for key, value in alone.scores.items():
      split, name = key.split("/", 1)
      if name in ("example_id", "label", "original_label", "corrupted", "active", "weight"):
        continue
      got = together.scores[f"{split}/seed{k}/{name}"]
      np.testing.assert_allclose(got, value, rtol=1e-5, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(together.metrics[-1]["test_accuracy_per_seed"][k],
                               alone.final["test_accuracy"])
  per_seed = np.stack([together.scores[f"train/seed{k}/forgetting_events"] for k in range(3)])
  np.testing.assert_array_equal(together.scores["train/forgetting_events"], per_seed.sum(0))


@pytest.mark.slow
def test_turnover_seeds_feed_bias_variance(data_dir, tmp_path):
  config = engine_fixtures.tiny_config(data_dir, num_epochs=2, num_seeds=2,
                                       **{"turnover.enabled": True})
  scores = train_and_evaluate(config, tmp_path / "k2").scores
  probs = scores["train/flipped_prob"]
  assert probs.shape == (2, 96, 10)
  split = bias_variance.bias_variance(probs, scores["train/label"])
  np.testing.assert_allclose(split["error"], split["bias"] + split["variance"], rtol=1e-5)
  assert float(split["variance"].mean()) > 0


class TestCombine:

  def test_toneva_combination(self):
    per_seed = {
        "forgetting_events": np.array([[0, 1, 0, 0], [0, 0, 0, 2]]),
        "unforgettable": np.array([[True, False, True, False], [True, True, False, False]]),
        "never_learned": np.array([[False, False, False, True], [False, False, True, False]]),
        "first_learned": np.array([[0, 2, 1, -1], [2, 0, -1, 3]]),
        "first_forgotten": np.array([[-1, 4, -1, -1], [-1, -1, -1, 5]]),
        "aum": np.array([[1.0, np.nan, 3.0, 0.0], [3.0, np.nan, 1.0, 2.0]]),
    }
    out = seeds.combine(per_seed)
    np.testing.assert_array_equal(out["forgetting_events"], [0, 1, 0, 2])
    np.testing.assert_array_equal(out["unforgettable"], [True, False, False, False])
    np.testing.assert_array_equal(out["never_learned"], [False, False, False, False])
    np.testing.assert_allclose(out["first_learned"], [1.0, 1.0, 1.0, 3.0])
    np.testing.assert_allclose(out["first_forgotten"], [-1.0, 4.0, -1.0, 5.0])
    np.testing.assert_allclose(out["aum"], [2.0, np.nan, 2.0, 1.0])

  def test_unforgettable_by_epoch_against_loop(self):
    rng = np.random.default_rng(0)
    k, n, epochs = 3, 40, 7
    fl = rng.integers(-1, epochs, (k, n))
    ff = np.where(rng.random((k, n)) < 0.5, -1, np.minimum(np.maximum(fl, 0) + 1 +
                                                          rng.integers(0, 4, (k, n)), epochs))
    ff = np.where(fl < 0, -1, ff)
    got = seeds.unforgettable_by_epoch(fl, ff, epochs)
    for e in range(1, epochs + 1):  # e epochs seen: observations 0..e-1
      count = sum(all(0 <= fl[s, i] <= e - 1 and not 0 <= ff[s, i] <= e - 1 for s in range(k))
                  for i in range(n))
      assert got[e - 1] == count / n
    assert 0 < got[-1] < 1


def test_clashing_options_refused(data_dir, tmp_path):
  config = engine_fixtures.tiny_config(data_dir, num_seeds=2,
                                       **{"prioritization": "infobatch"})
  with pytest.raises(ConfigError, match="num_seeds=2 cannot be combined with prioritization"):
    train_and_evaluate(config, tmp_path / "w")
