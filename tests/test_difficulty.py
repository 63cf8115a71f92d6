"""The score registry (`metrics.difficulty`): Toneva's seed rule against a slow copy of their
code, one definition per score, directions, seed rules and tie-breaking."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regularity_jax import metrics
from regularity_jax.estimators import turnover as turnover_estimator
from regularity_jax.metrics import difficulty
from regularity_jax.selection import pruning
from regularity_jax.metrics import seeds


def toneva_order_examples_by_forgetting(accuracies_per_seed, npresentations):
  """Toneva et al.'s `compute_forgetting_statistics` + `sort_examples_by_forgetting`
  (github.com/mtoneva/example_forgetting, order_examples_by_forgetting.py), re-typed line by
  line with dicts and loops; argsort made stable so that ties have a defined order.

  accuracies_per_seed: list over seeds of {example_id: [0/1 accuracy of each presentation]}.
  Returns (ordered example ids, their sorted forgetting counts).
  """
  unlearned_per_presentation_all, first_learned_all = [], []
  for diag_stats in accuracies_per_seed:
    unlearned_per_presentation, first_learned = {}, {}
    for example_id, accs in diag_stats.items():
      presentation_acc = np.array(accs[:npresentations])
      transitions = presentation_acc[1:] - presentation_acc[:-1]
      if len(np.where(transitions == -1)[0]) > 0:
        unlearned_per_presentation[example_id] = np.where(transitions == -1)[0] + 2
      else:
        unlearned_per_presentation[example_id] = []
      if len(np.where(presentation_acc == 1)[0]) > 0:
        first_learned[example_id] = np.where(presentation_acc == 1)[0][0]
      else:
        first_learned[example_id] = np.nan
    unlearned_per_presentation_all.append(unlearned_per_presentation)
    first_learned_all.append(first_learned)
  example_original_order, example_stats = [], []
  for example_id in unlearned_per_presentation_all[0].keys():
    example_original_order.append(example_id)
    example_stats.append(0)
    for i in range(len(unlearned_per_presentation_all)):
      stats = unlearned_per_presentation_all[i][example_id]
      if np.isnan(first_learned_all[i][example_id]):
        example_stats[-1] += npresentations
      else:
        example_stats[-1] += len(stats)
  order = np.argsort(example_stats, kind="stable")
  return np.array(example_original_order)[order], np.sort(example_stats)


def per_seed_streams(seed, num_examples, num_seeds, epochs, batch=4, num_classes=3):
  """Random accuracy sequences per seed (each example presented once per epoch, in random
  batches), with examples that are never learned in some seeds; and the kernels' tables."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, num_classes, num_examples).astype(np.int32)
  accuracies, tables = [], []
  for k in range(num_seeds):
    p_correct = rng.uniform(0.0, 1.0, num_examples)
    never = rng.uniform(size=num_examples) < 0.25  # never learned in this seed
    p_correct[never] = 0.0
    acc = {i: [] for i in range(num_examples)}
    state = metrics.forgetting.init(num_examples)
    update = jax.jit(metrics.forgetting.update)
    for _ in range(epochs):
      order = rng.permutation(num_examples)
      for start in range(0, num_examples, batch):
        ids = order[start:start + batch]
        correct = rng.uniform(size=len(ids)) < p_correct[ids]
        y = labels[ids]
        predicted = np.where(correct, y, (y + 1) % num_classes)
        logits = np.eye(num_classes, dtype=np.float32)[predicted]
        state = update(state, ids.astype(np.int32), logits, y)
        for i, c in zip(ids, correct):
          acc[int(i)].append(int(c))
    accuracies.append(acc)
    tables.append({k_: np.asarray(v) for k_, v in
                   jax.device_get(metrics.forgetting.summarize(state)).items()})
  return accuracies, tables


def scores_table(tables):
  """A scores.npz-like table as the engine writes it: per-seed columns, summed columns and
  the stored Toneva score."""
  n = len(tables[0]["observations"])
  out = {"train/example_id": np.arange(n, dtype=np.int32)}
  per_seed_scores = []
  for k, table in enumerate(tables):
    rows = {key: v for key, v in table.items() if np.ndim(v) == 1}
    rows["forgetting_score"] = np.asarray(difficulty.score("forgetting", rows))
    per_seed_scores.append(rows["forgetting_score"])
    for key, value in rows.items():
      out[f"train/seed{k}/{key}"] = value
  stacked = {key: np.stack([out[f"train/seed{k}/{key}"] for k in range(len(tables))])
             for key in tables[0] if np.ndim(tables[0][key]) == 1}
  stacked["forgetting_score"] = np.stack(per_seed_scores)
  for key, value in seeds.combine(stacked).items():
    out[f"train/{key}"] = value
  return out


class TestTonevaSeedRule:

  @pytest.mark.parametrize("num_seeds", [1, 2, 5])
  @pytest.mark.parametrize("seed", [0, 1])
  def test_against_order_examples_by_forgetting(self, num_seeds, seed):
    n, epochs = 23, 7
    accuracies, tables = per_seed_streams(seed, n, num_seeds, epochs)
    never_in_some = np.any([t["never_learned"] for t in tables], axis=0)
    never_in_all = np.all([t["never_learned"] for t in tables], axis=0)
    assert never_in_some.any()
    if num_seeds > 1:
      assert (never_in_some & ~never_in_all).any()  # the case the old rule got wrong
    want_ids, want_counts = toneva_order_examples_by_forgetting(accuracies, epochs)
    table = scores_table(tables)
    for source in ("stored column", "per-seed columns"):
      columns = table if source == "stored column" else {
          k: v for k, v in table.items() if k != "train/forgetting_score"}
      score = difficulty.from_scores("forgetting", columns)
      np.testing.assert_array_equal(np.sort(score), want_counts, err_msg=source)
      got_ids = difficulty.order(score, ties="stable")
      np.testing.assert_array_equal(got_ids, want_ids, err_msg=source)
    # The summed event count is kept as it is: events only, never-learned seeds add 0.
    np.testing.assert_array_equal(table["train/forgetting_events"],
                                  np.sum([t["forgetting_events"] for t in tables], axis=0))

  def test_pruning_keeps_the_hardest_by_toneva_score(self):
    accuracies, tables = per_seed_streams(3, 40, 5, 6)
    table = scores_table(tables)
    reference = np.zeros(40)
    ids, sorted_counts = toneva_order_examples_by_forgetting(accuracies, 6)
    reference[ids] = sorted_counts
    kept = pruning.select(pruning.score_from_table(table, "forgetting"), fraction_kept=0.7,
                          rule="hardest", seed=0)
    removed = np.setdiff1d(np.arange(40), kept)
    # No removed example has a higher Toneva score than a kept one.
    assert reference[removed].max() <= reference[kept].min()

  def test_never_learned_counts_the_seeds_presentations(self):
    table = {"forgetting_events": np.array([0, 3, 0, 0, 1]),
             "never_learned": np.array([True, False, False, False, False]),
             "observations": np.array([7, 7, 7, 0, 7])}
    np.testing.assert_array_equal(difficulty.score("forgetting", table), [7, 3, 0, np.nan, 1])

  def test_unobserved_in_a_seed_is_unscored(self):
    np.testing.assert_array_equal(
        difficulty.combine("forgetting", np.array([[1.0, np.nan], [2.0, 3.0]])), [3.0, np.nan])

  def test_jax_tables_stay_on_device(self):
    table = {"forgetting_events": jnp.array([0, 1]), "never_learned": jnp.array([True, False]),
             "observations": jnp.array([2, 2])}
    out = jax.jit(lambda t: difficulty.score("forgetting", t))(table)
    assert isinstance(out, jax.Array)
    np.testing.assert_array_equal(out, [2.0, 1.0])


class TestRegistry:

  def test_every_score_reads_what_its_source_provides(self):
    provided = {name: set(module.SUMMARY_KEYS) for name, module in metrics.KERNELS.items()}
    provided["turnover"] = set(turnover_estimator.SUMMARY_KEYS)
    for spec in difficulty.SCORES.values():
      assert spec.split in difficulty.SPLITS and spec.seeds in difficulty.SEED_RULES
      assert spec.source in difficulty.SOURCES, spec.name
      if spec.source in provided:
        assert set(spec.needs) <= provided[spec.source], spec.name

  @pytest.mark.parametrize("name,table,harder", [
      ("cbtl", {"mean_correct": np.array([0.9, 0.2])}, 1),
      ("aum", {"aum": np.array([3.0, -1.0])}, 1),
      ("el2n", {"mean_el2n": np.array([0.1, 1.2])}, 1),
      ("loss", {"mean_loss": np.array([0.1, 2.0])}, 1),
      ("confidence", {"confidence": np.array([0.95, 0.3])}, 1),
      ("variability", {"variability": np.array([0.01, 0.4])}, 1),
      ("grand", {"grand": np.array([0.5, 3.0])}, 1),
      ("normalized_margin", {"normalized_margin": np.array([0.2, -0.1])}, 1),
      ("memorization", {"memorization": np.array([0.0, 1.0])}, 1),
      ("memorization_loss", {"memorization_loss": np.array([0.0, 2.0])}, 1),
      ("generalization_error", {"generalization_error": np.array([0.1, 3.0])}, 1),
      ("cbgl", {"mean_correct": np.array([1.0, 0.0])}, 1),
  ])
  def test_higher_is_harder(self, name, table, harder):
    score = difficulty.score(name, table)
    assert int(np.argmax(score)) == harder

  def test_cbtl_is_fair_to_unequal_observation_counts(self):
    # 2 of 2 correct is easier than 5 of 10, although it has fewer correct presentations.
    table = {"mean_correct": np.array([1.0, 0.5]), "cumulative_correct": np.array([2, 5]),
             "observations": np.array([2, 10])}
    assert difficulty.score("cbtl", table)[0] < difficulty.score("cbtl", table)[1]

  def test_missing_statistic_names_its_kernel(self):
    with pytest.raises(ValueError, match="'margins' kernel"):
      difficulty.score("aum", {"mean_loss": np.zeros(2)})
    with pytest.raises(ValueError, match="turnover.enabled"):
      difficulty.score("memorization", {"aum": np.zeros(2)})
    with pytest.raises(ValueError, match="unknown score 'forgeting'"):
      difficulty.get("forgeting")
    with pytest.raises(ValueError, match="of the test split"):
      difficulty.get("aum", "test")

  def test_mean_rule_ignores_unscored_seeds(self):
    np.testing.assert_allclose(difficulty.combine("aum", np.array([[1.0, np.nan, np.nan],
                                                                   [3.0, 2.0, np.nan]])),
                               [2.0, 2.0, np.nan])

  def test_multi_seed_mean_scores_equal_the_combined_columns(self):
    rng = np.random.default_rng(0)
    aum = rng.normal(size=(3, 6)).astype(np.float32)
    table = {"train/example_id": np.arange(6)}
    for k in range(3):
      table[f"train/seed{k}/aum"] = aum[k]
    table["train/aum"] = seeds.combine({"aum": aum})["aum"]
    np.testing.assert_allclose(difficulty.from_scores("aum", table), -table["train/aum"],
                               rtol=1e-6)

  def test_every_user_of_scores_goes_through_the_registry(self):
    assert set(pruning.SCORES) == set(difficulty.TRAIN_SCORES) | {"random"}
    from regularity_jax import weighting
    from regularity_jax.selection import test_sets
    assert set(weighting.SCORES) == set(difficulty.TRAIN_SCORES)
    assert set(test_sets.BY) == set(difficulty.TEST_SCORES)


class TestOrder:

  def test_nan_last_inf_hardest(self):
    order = difficulty.order(np.array([1.0, np.nan, np.inf, 0.0]), ties="stable")
    np.testing.assert_array_equal(order, [3, 0, 2, 1])
    np.testing.assert_array_equal(
        difficulty.order(np.array([1.0, np.nan, np.inf, 0.0]), ties="stable", descending=True),
        [2, 0, 3, 1])

  def test_stable_ties_by_position(self):
    np.testing.assert_array_equal(difficulty.order(np.zeros(5), ties="stable"), np.arange(5))

  def test_random_ties_come_from_the_seed(self):
    a = difficulty.order(np.zeros(50), seed=1)
    np.testing.assert_array_equal(a, difficulty.order(np.zeros(50), seed=1))
    assert not np.array_equal(a, np.arange(50))
    assert not np.array_equal(a, difficulty.order(np.zeros(50), seed=2))

  def test_unknown_ties(self):
    with pytest.raises(ValueError, match="ties"):
      difficulty.order(np.zeros(3), ties="first")
