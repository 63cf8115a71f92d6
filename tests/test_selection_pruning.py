"""Static pruning rules and test-set selection (regularity_jax.selection, host side).

Expected ids are written by hand from the scores next to them.
"""

import numpy as np
import pytest

from regularity_jax.selection import pruning
from regularity_jax.selection import test_sets

NAN, INF = np.nan, np.inf


class TestSelect:

  SCORES = np.array([0.5, 0.1, 0.9, 0.3, 0.7, 0.2], np.float32)

  def test_easiest_keeps_lowest(self):
    # 0.1, 0.2, 0.3 sit at positions 1, 5, 3.
    kept = pruning.select(self.SCORES, fraction_kept=0.5, rule="easiest")
    np.testing.assert_array_equal(kept, [1, 3, 5])

  def test_hardest_keeps_highest(self):
    # 0.9, 0.7, 0.5 sit at positions 2, 4, 0.
    kept = pruning.select(self.SCORES, fraction_kept=0.5, rule="hardest")
    np.testing.assert_array_equal(kept, [0, 2, 4])

  def test_nan_is_kept_last_by_both_rules_and_inf_is_hardest(self):
    scores = np.array([NAN, 0.2, NAN, 0.1, INF], np.float32)
    np.testing.assert_array_equal(pruning.select(scores, fraction_kept=0.4, rule="easiest"), [1, 3])
    np.testing.assert_array_equal(pruning.select(scores, fraction_kept=0.2, rule="hardest"), [4])
    np.testing.assert_array_equal(pruning.select(scores, fraction_kept=0.6, rule="hardest"),
                                  [1, 3, 4])
    np.testing.assert_array_equal(pruning.select(scores, fraction_kept=0.6, rule="easiest"),
                                  [1, 3, 4])
    kept = pruning.select(scores, fraction_kept=0.8, rule="easiest")
    assert len(kept) == 4 and {1, 3, 4} <= set(kept.tolist())

  def test_ties_are_broken_by_seed_not_position(self):
    scores = np.array([1, 1, 1, 1, 0], np.float32)
    picks = set()
    for seed in range(40):
      kept = pruning.select(scores, fraction_kept=0.4, rule="easiest", seed=seed)
      assert 4 in kept
      picks |= set(kept.tolist()) - {4}
    assert picks == {0, 1, 2, 3}
    np.testing.assert_array_equal(pruning.select(scores, fraction_kept=0.4, rule="easiest", seed=3),
                                  pruning.select(scores, fraction_kept=0.4, rule="easiest", seed=3))

  @pytest.mark.parametrize("rule", ["easiest", "hardest", "random", "class_stratified_easiest",
                                    "class_stratified_hardest", "ccs"])
  @pytest.mark.parametrize("n,fraction", [(7, 0.5), (5, 0.5), (10, 0.0), (10, 1.0), (13, 0.31)])
  def test_keeps_exactly_round_fraction_n(self, rule, n, fraction):
    rng = np.random.default_rng(n)
    scores = rng.normal(size=n).astype(np.float32)
    labels = rng.integers(0, 3, n)
    kept = pruning.select(scores, fraction_kept=fraction, rule=rule, labels=labels, num_bins=3)
    assert len(kept) == round(fraction * n)
    assert len(set(kept.tolist())) == len(kept)
    np.testing.assert_array_equal(kept, np.sort(kept))

  def test_random_ignores_scores_and_depends_on_seed(self):
    scores = np.arange(100, dtype=np.float32)
    a = pruning.select(scores, fraction_kept=0.3, rule="random", seed=1)
    b = pruning.select(scores[::-1].copy(), fraction_kept=0.3, rule="random", seed=1)
    c = pruning.select(scores, fraction_kept=0.3, rule="random", seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)

  @pytest.mark.parametrize("kwargs,match", [
      (dict(rule="median", fraction_kept=0.5), "unknown pruning rule 'median'"),
      (dict(rule="easiest", fraction_kept=1.5), r"fraction_kept must be in \[0, 1\]"),
      (dict(rule="hardest", fraction_kept=-0.1), r"fraction_kept must be in \[0, 1\]"),
      (dict(rule="class_stratified_easiest", fraction_kept=0.5), "need labels"),
      (dict(rule="ccs", fraction_kept=0.5, ccs_hard_cutoff=1.0), "ccs_hard_cutoff"),
  ])
  def test_bad_arguments_raise(self, kwargs, match):
    with pytest.raises(ValueError, match=match):
      pruning.select(np.zeros(4, np.float32), **kwargs)


class TestClassStratified:

  LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1])
  SCORES = np.array([4, 3, 2, 1, 10, 20, 30, 40], np.float32)

  def test_easiest_within_each_class(self):
    # Globally easiest would be [0, 1, 2, 3] (all class 0); per class: 2 and 3, then 4 and 5.
    kept = pruning.select(self.SCORES, fraction_kept=0.5, rule="class_stratified_easiest",
                          labels=self.LABELS)
    np.testing.assert_array_equal(kept, [2, 3, 4, 5])

  def test_hardest_within_each_class(self):
    kept = pruning.select(self.SCORES, fraction_kept=0.5, rule="class_stratified_hardest",
                          labels=self.LABELS)
    np.testing.assert_array_equal(kept, [0, 1, 6, 7])

  def test_quotas_by_largest_remainder(self):
    # 0.5 * (3, 3, 4) = (1.5, 1.5, 2): floors (1, 1, 2) sum to 4 < round(5.0); the one extra goes
    # to the first of the tied remainders, class 0.
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    assert pruning.class_quotas(labels, 0.5) == {0: 2, 1: 1, 2: 2}
    kept = pruning.select(np.arange(10, dtype=np.float32), fraction_kept=0.5,
                          rule="class_stratified_easiest", labels=labels)
    np.testing.assert_array_equal(kept, [0, 1, 3, 6, 7])

  def test_per_class_fraction_on_unbalanced_classes(self):
    rng = np.random.default_rng(0)
    labels = rng.choice(10, size=1000, p=np.linspace(1, 10, 10) / 55)
    scores = rng.normal(size=1000).astype(np.float32)
    kept = pruning.select(scores, fraction_kept=0.3, rule="class_stratified_hardest",
                          labels=labels)
    assert len(kept) == 300
    for c in range(10):
      n_c = (labels == c).sum()
      assert abs((labels[kept] == c).sum() - 0.3 * n_c) < 1
      in_class = np.flatnonzero(labels == c)
      threshold = np.sort(scores[in_class])[::-1][(labels[kept] == c).sum() - 1]
      assert (scores[kept][labels[kept] == c] >= threshold).all()


class TestCCS:

  # 4 equal-width bins over [0, 4]: sizes 1, 2, 5, 8 (N = 16).
  SCORES = np.array([0.0, 1.2, 1.5, 2.1, 2.3, 2.5, 2.7, 2.9,
                     3.0, 3.2, 3.4, 3.5, 3.6, 3.8, 3.9, 4.0], np.float32)
  BINS = np.array([0, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3])

  def test_bins(self):
    np.testing.assert_array_equal(pruning.ccs_bins(self.SCORES, 4), self.BINS)
    np.testing.assert_array_equal(pruning.ccs_bins(np.array([-INF, 0, 1, INF, NAN]), 2),
                                  [0, 0, 1, 1, -1])
    np.testing.assert_array_equal(pruning.ccs_bins(np.array([2.0, 2.0]), 5), [0, 0])

  def test_allocation_by_hand(self):
    # budget 8 over 4 bins: smallest bin min(1, 8 // 4) = 1, left 7; min(2, 7 // 3) = 2, left 5;
    # min(5, 5 // 2) = 2, left 3; the last bin takes 3.
    np.testing.assert_array_equal(pruning.ccs_allocation([1, 2, 5, 8], 8), [1, 2, 2, 3])
    # Empty bins do not count: min(1, 9 // 3) = 1, min(3, 8 // 2) = 3, last takes 5.
    np.testing.assert_array_equal(pruning.ccs_allocation([0, 3, 1, 10], 9), [0, 3, 1, 5])

  def test_select_follows_allocation(self):
    kept = pruning.select(self.SCORES, fraction_kept=0.5, rule="ccs", num_bins=4)
    np.testing.assert_array_equal(np.bincount(self.BINS[kept], minlength=4), [1, 2, 2, 3])
    assert {0, 1, 2} <= set(kept.tolist())  # the small bins are kept whole

  def test_uniform_within_bins(self):
    seen = set()
    for seed in range(30):
      seen |= set(pruning.select(self.SCORES, fraction_kept=0.5, rule="ccs", num_bins=4,
                                 seed=seed).tolist())
    assert seen == set(range(16))

  def test_hard_cutoff_drops_hardest_first(self):
    # Cutoff 0.25 drops the 4 hardest (positions 12..15); keeping 12 keeps everything else.
    kept = pruning.select(self.SCORES, fraction_kept=0.75, rule="ccs", num_bins=4,
                          ccs_hard_cutoff=0.25)
    np.testing.assert_array_equal(kept, np.arange(12))
    with pytest.raises(ValueError, match="cannot keep 13"):
      pruning.select(self.SCORES, fraction_kept=13 / 16, rule="ccs", ccs_hard_cutoff=0.25)

  def test_nan_never_kept(self):
    scores = np.array([NAN, 1.0, 2.0, NAN, 3.0, INF], np.float32)
    np.testing.assert_array_equal(
        pruning.select(scores, fraction_kept=4 / 6, rule="ccs", num_bins=2), [1, 2, 4, 5])
    with pytest.raises(ValueError, match="only 4 are scored"):
      pruning.select(scores, fraction_kept=5 / 6, rule="ccs")


class TestScoreFromTable:
  """`score_from_table` reads the registry's scores (metrics.difficulty) from scores.npz columns."""

  TABLE = {
      "train/example_id": np.array([10, 11, 12, 13], np.int32),
      "train/forgetting_events": np.array([0, 1, 0, 0], np.int32),
      "train/never_learned": np.array([False, False, False, True]),
      "train/observations": np.array([3, 3, 0, 3], np.int32),
      "train/mean_correct": np.array([1.0, 1 / 3, NAN, 0.0], np.float32),
      "train/aum": np.array([1.5, -0.5, NAN, -2.0], np.float32),
      "train/mean_el2n": np.array([0.1, 0.9, 0.3, 1.2], np.float32),
      "train/grand": np.array([1.0, 4.0, 2.0, 3.0], np.float32),
      "train/memorization": np.array([0.0, 1.0, 0.0, -1.0], np.float32),
  }

  @pytest.mark.parametrize("name,expected", [
      ("forgetting", [0, 1, NAN, 3]),      # never learned -> the 3 presentations; unseen -> NaN
      ("cbtl", [0, 2 / 3, NAN, 1]),        # the fraction of wrong presentations
      ("aum", [-1.5, 0.5, NAN, 2.0]),      # lower margin = harder
      ("el2n", [0.1, 0.9, 0.3, 1.2]),
      ("grand", [1.0, 4.0, 2.0, 3.0]),
      ("memorization", [0.0, 1.0, 0.0, -1.0]),
  ])
  def test_conventions(self, name, expected):
    score = pruning.score_from_table(self.TABLE, name)
    assert score.dtype == np.float32
    np.testing.assert_allclose(score, np.array(expected, np.float32), rtol=1e-6)

  def test_toneva_pruning_drops_never_learned_first(self):
    score = pruning.score_from_table(self.TABLE, "forgetting")
    np.testing.assert_array_equal(pruning.select(score, fraction_kept=0.5, rule="easiest"), [0, 1])

  def test_random_is_seeded(self):
    a = pruning.score_from_table(self.TABLE, "random", seed=1)
    assert a.shape == (4,) and ((0 <= a) & (a < 1)).all()
    np.testing.assert_array_equal(a, pruning.score_from_table(self.TABLE, "random", seed=1))

  def test_loaded_npz(self, tmp_path):
    np.savez(tmp_path / "scores.npz", **self.TABLE)
    with np.load(tmp_path / "scores.npz") as z:
      np.testing.assert_allclose(pruning.score_from_table(z, "cbtl"), [0, 2 / 3, NAN, 1])

  def test_errors_name_the_table(self):
    with pytest.raises(ValueError, match="unknown score 'loss2'.*forgetting"):
      pruning.score_from_table(self.TABLE, "loss2")
    with pytest.raises(ValueError, match=r"needs the statistic\(s\) \['mean_loss'\].*losses"):
      pruning.score_from_table(self.TABLE, "loss")
    with pytest.raises(ValueError, match="of the train split"):
      pruning.score_from_table(self.TABLE, "cbgl")

  def test_ties_stable_or_random(self):
    scores = np.zeros(20, np.float32)
    np.testing.assert_array_equal(
        pruning.select(scores, fraction_kept=0.25, rule="hardest", ties="stable"), np.arange(5))
    random_pick = pruning.select(scores, fraction_kept=0.25, rule="hardest", seed=3)
    assert not np.array_equal(random_pick, np.arange(5))


class TestTestSelection:

  TABLE = {
      "test/example_id": np.arange(100, 110),
      "test/cumulative_correct": np.array([5, 0, 3, 4, 1, 2, 5, 3, 0, 4]),
      "test/forgetting_events": np.array([0, 1, 2, 1, 3, 1, 0, 2, 0, 1]),
      "test/never_learned": np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 0], bool),
      "test/observations": np.array([5, 5, 5, 5, 5, 5, 5, 5, 5, 0]),
      "test/mean_correct": np.array([1, 0, 0.6, 0.8, 0.2, 0.4, 1, 0.6, 0, NAN], np.float32),
  }

  def test_cbgl(self):
    # The fraction of the 5 evaluations that were wrong.
    np.testing.assert_allclose(test_sets.irregularity(self.TABLE, "cbgl"),
                               [0, 1, 0.4, 0.2, 0.8, 0.6, 0, 0.4, 1, NAN], atol=1e-6)
    regular, irregular = test_sets.split_regular_irregular(self.TABLE, "cbgl", 0.2)
    np.testing.assert_array_equal(regular, [100, 106])    # 5 correct evaluations each
    np.testing.assert_array_equal(irregular, [101, 108])  # 0 correct evaluations each

  def test_malgeneralizing(self):
    # 108 never learned -> most irregular, then 104 with 3 events; 100 and 106 have none.
    regular, irregular = test_sets.split_regular_irregular(self.TABLE, "malgeneralizing", 0.2)
    np.testing.assert_array_equal(regular, [100, 106])
    np.testing.assert_array_equal(irregular, [104, 108])

  def test_positions_without_example_id(self):
    table = {k: v for k, v in self.TABLE.items() if k != "test/example_id"}
    regular, irregular = test_sets.split_regular_irregular(table, "cbgl", 0.2)
    np.testing.assert_array_equal(regular, [0, 6])
    np.testing.assert_array_equal(irregular, [1, 8])

  def test_errors(self):
    with pytest.raises(ValueError, match="fraction"):
      test_sets.split_regular_irregular(self.TABLE, "cbgl", 0.6)
    with pytest.raises(ValueError, match="unknown score 'aum' of the test split"):
      test_sets.split_regular_irregular(self.TABLE, "aum")
    with pytest.raises(ValueError, match="needs"):
      test_sets.split_regular_irregular({"test/example_id": np.arange(3)}, "cbgl")

  def test_accuracy(self):
    assert test_sets.accuracy([True, False, True, True]) == 0.75
    assert np.isnan(test_sets.accuracy([]))

  def test_ece_by_hand(self):
    # bin (0.9, 1]: accuracy 1/2, confidence 0.95; bin (0.5, 0.6]: accuracy 1, confidence 0.55.
    # ECE = 0.5 * 0.45 + 0.5 * 0.45.
    ece = test_sets.expected_calibration_error([0.95, 0.95, 0.55, 0.55],
                                                    [True, False, True, True], num_bins=10)
    assert ece == pytest.approx(0.45)
    assert test_sets.expected_calibration_error([0.75] * 4, [1, 1, 1, 0]) == pytest.approx(0)
    assert np.isnan(test_sets.expected_calibration_error([], []))

  def test_ece_against_plain_implementation(self):
    rng = np.random.default_rng(0)
    conf = np.concatenate([rng.uniform(size=500), [0.0, 1.0, 1 / 3]])
    correct = rng.uniform(size=conf.size) < conf
    m = 15
    ece = 0.0
    for b in range(m):
      lo, hi = b / m, (b + 1) / m
      in_bin = (conf > lo) & (conf <= hi) if b else (conf >= lo) & (conf <= hi)
      if in_bin.any():
        ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    assert test_sets.expected_calibration_error(conf, correct, m) == pytest.approx(ece)
