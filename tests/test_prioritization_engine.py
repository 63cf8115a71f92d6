"""Online prioritization and static pruning inside the engine: counts, ids, no recompiles."""

import numpy as np
import pytest

from regularity_jax.selection import pruning
from regularity_jax.training import ConfigError
from regularity_jax.training import train_and_evaluate
from tests import engine_fixtures


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp("data")
  engine_fixtures.write_tiny_npz(d, n_train=128)
  return d


def _run(data_dir, tmp_path, name, **overrides):
  config = engine_fixtures.tiny_config(data_dir, **{"num_epochs": 4, **overrides})
  return train_and_evaluate(config, tmp_path / name)


class TestOnlinePrioritization:

  @pytest.mark.slow
  def test_selective_backprop_backpropagates_about_half_after_a_full_first_epoch(
      self, data_dir, tmp_path):
    # A short history (recent losses only): with the default 1024 the history of this tiny,
    # fast-learning run is dominated by older, larger losses and fewer examples are kept.
    with engine_fixtures.count_traces({"sb_step": 1, "epoch_step": 1}) as traces:
      result = _run(data_dir, tmp_path, "sb", **{"prioritization": "selective_backprop",
                                                "prioritization_options.sb_history": 32})
    back = [r["examples_backpropagated"] for r in result.metrics]
    forwarded = [r["examples_forwarded"] for r in result.metrics]
    assert back[0] == 128 and forwarded == [128] * 4
    assert all(30 <= b <= 100 for b in back[1:]), back  # beta = 1 keeps about half
    assert traces["sb_step"] == 1 and traces["epoch_step"] == 1

  @pytest.mark.slow
  def test_infobatch_prunes_below_mean_then_anneals(self, data_dir, tmp_path):
    with engine_fixtures.count_traces({"epoch_plan_infobatch": 1, "epoch_step": 1}) as traces:
      result = _run(data_dir, tmp_path, "ib", num_epochs=8, **{"prioritization": "infobatch"})
    back = [r["examples_backpropagated"] for r in result.metrics]
    assert back[0] == 128 and back[-1] == 128        # unseen at first; annealed at 7/8
    assert all(b < 128 for b in back[1:7]), back
    assert traces["epoch_plan_infobatch"] == 1

  @pytest.mark.slow
  def test_importance_sampling_same_steps(self, data_dir, tmp_path):
    result = _run(data_dir, tmp_path, "is", **{"prioritization": "importance"})
    assert [r["examples_backpropagated"] for r in result.metrics] == [128] * 4

  @pytest.mark.slow
  def test_noise_aware_excludes_flagged(self, data_dir, tmp_path):
    result = _run(data_dir, tmp_path, "na", num_epochs=8, **{
        "prioritization": "noise_aware", "prioritization_options.noise_fraction": 0.25,
        "prioritization_options.noise_warmup": 2})
    back = [r["examples_backpropagated"] for r in result.metrics]
    assert back[-1] == 96  # annealed InfoBatch, minus the 25% flagged

  def test_needs_losses_kernel(self, data_dir, tmp_path):
    with pytest.raises(ConfigError, match="needs the 'losses' kernel"):
      _run(data_dir, tmp_path, "x", **{"prioritization": "infobatch",
                                       "tracking.kernels": ("forgetting",)})


class TestStaticPruning:

  @pytest.mark.slow
  def test_keeps_exactly_the_selected_ids(self, data_dir, tmp_path):
    first = _run(data_dir, tmp_path, "first")
    scores_path = first.workdir / "scores.npz"
    pruned = _run(data_dir, tmp_path, "pruned", **{
        "pruning.scores_path": str(scores_path), "pruning.score": "forgetting",
        "pruning.rule": "hardest", "pruning.fraction_kept": 0.25})
    with np.load(scores_path) as z:
      table = {k: z[k] for k in z.files}
    expected = pruning.select(pruning.score_from_table(table, "forgetting"), fraction_kept=0.25,
                              rule="hardest", labels=table["train/label"])
    np.testing.assert_array_equal(np.flatnonzero(pruned.scores["train/active"]), expected)
    assert all(r["examples_backpropagated"] == 32 for r in pruned.metrics)
    np.testing.assert_array_equal(pruned.scores["train/observations"][~pruned.scores["train/active"]], 0)

  @pytest.mark.slow
  def test_random_pruning_needs_no_scores(self, data_dir, tmp_path):
    result = _run(data_dir, tmp_path, "rand", **{"pruning.score": "random",
                                                 "pruning.fraction_kept": 0.5})
    assert result.scores["train/active"].sum() == 64

  def test_missing_scores_path(self, data_dir, tmp_path):
    with pytest.raises(ConfigError, match="pruning.scores_path"):
      _run(data_dir, tmp_path, "x", **{"pruning.fraction_kept": 0.5})


@pytest.mark.slow
def test_importance_sampling_counts_a_repeated_example_once(data_dir, tmp_path):
  # Sampling with replacement repeats ids within a batch; each counts as one presentation.
  result = _run(data_dir, tmp_path, "is1", num_epochs=1, **{"prioritization": "importance"})
  observations = result.scores["train/observations"]
  assert observations.max() <= 8   # 8 batches of 16 rows: at most one presentation per batch
  assert observations.sum() <= 128 and observations.sum() > 64


@pytest.mark.slow
def test_margin_summaries_skip_without_the_margins_kernel(data_dir, tmp_path):
  result = _run(data_dir, tmp_path, "nomargin", num_epochs=1,
                **{"tracking.kernels": ("forgetting", "cumulative")})
  assert "margin_auc" not in result.final and "train/normalized_margin" not in result.scores
