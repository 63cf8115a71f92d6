"""Every part from its own block (docs/parts.md): features, evaluators, prioritization methods,
tracker statistics, weighting schemes, pruning rules and margin normalizers, built-in and by
import path; hooks in phase order; old spellings translated (docs/migration.md)."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from regularity_jax import registry
from regularity_jax.metrics import difficulty
from regularity_jax.metrics import statistics
from regularity_jax.models import norms
from regularity_jax.runs import scores_file
from regularity_jax.selection import pruning as pruning_lib
from regularity_jax.training import ConfigError
from regularity_jax.training import config as config_lib
from regularity_jax.training import evaluators as evaluators_lib
from regularity_jax.training import features as features_lib
from regularity_jax.training import migration
from regularity_jax.training.features import Feature
from regularity_jax.weighting import schemes
from tests import engine_fixtures

# A user statistic written outside the repository: the running mean of the softmax entropy.
MY_STAT = '''
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from regularity_jax.metrics import indexing


class EntropyState(NamedTuple):
  total: jnp.ndarray    # f32[N] sum of the softmax entropies seen
  count: jnp.ndarray    # i32[N] presentations seen
  dropped: jnp.ndarray  # i32[] rows not counted (ids out of range, repeats)


class EntropyMean:
  """Running mean of the softmax entropy over presentations (higher = less sure = harder)."""
  name = "entropy"
  streams = ("presentations",)
  summary_keys = ("mean_entropy", "entropy_count")
  score_key = "mean_entropy"
  direction = "higher_is_harder"
  seeds = "mean"
  never_seen = math.nan

  def __init__(self, block, run):
    self.scale = float(block.get("scale", 1.0))

  def init(self, num_examples):
    return EntropyState(jnp.zeros((num_examples,), jnp.float32),
                        jnp.zeros((num_examples,), jnp.int32), indexing.no_drops())

  def update(self, state, ids, logits, labels, mask=None):
    rows = indexing.select_rows(ids, mask, state.count.shape[0])
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    entropy = -jnp.sum(jnp.exp(log_p) * log_p, axis=-1) * self.scale
    return EntropyState(indexing.scatter_add(state.total, rows.ids, entropy),
                        indexing.scatter_add(state.count, rows.ids, jnp.ones_like(rows.ids)),
                        state.dropped + rows.dropped)

  def summarize(self, state):
    seen = state.count > 0
    return {"mean_entropy": jnp.where(seen, state.total / jnp.maximum(state.count, 1), jnp.nan),
            "entropy_count": state.count, "dropped": state.dropped}


class NoIdAxis(EntropyMean):
  name = "no_id_axis"

  def init(self, num_examples):
    return super().init(num_examples + 1)


class NoDrops(EntropyMean):
  name = "no_drops"

  def update(self, state, ids, logits, labels, mask=None):
    new = super().update(state, ids, logits, labels, mask)
    return new._replace(dropped=state.dropped)


class HostSync(EntropyMean):
  name = "host_sync"

  def update(self, state, ids, logits, labels, mask=None):
    if float(jnp.sum(logits)) > 1e9:  # a host sync: refused under jit
      return state
    return super().update(state, ids, logits, labels, mask)


class ZeroUnseen(EntropyMean):
  name = "zero_unseen"

  def summarize(self, state):
    out = super().summarize(state)
    return {**out, "mean_entropy": jnp.nan_to_num(out["mean_entropy"])}
'''

# Other user parts: a weighting scheme, a pruning rule, a normalizer, a prioritization method
# and a feature.
MY_PARTS = '''
import jax.numpy as jnp
import numpy as np

from regularity_jax.training.evaluators import Evaluator
from regularity_jax.training.features import Feature
from regularity_jax.training.features.prioritization.uniform import Uniform


def linear(d, tau, lam):
  return 1.0 + tau * d


def middle(scores, k, *, labels, seed, ties):
  order = np.argsort(scores, kind="stable")
  start = (len(scores) - k) // 2
  return order[start:start + k]


def too_few(scores, k, *, labels, seed, ties):
  return np.arange(max(k - 1, 0))


def log_sum_of_squares(params, model_state):
  import jax
  return jnp.log(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(params)))


class MyUniform(Uniform):
  name = "my_uniform"


class Note(Feature):
  name = "note"
  phase = "data"
  block = "note"
  switch = "note.enabled"


class NoPhase(Feature):
  name = "no_phase"


class Steps(Evaluator):
  """Writes the run's step count under its own key (its block: `steps_eval`)."""
  name = "steps_eval"
  phase = "estimates"
  block = "steps_eval"

  def __call__(self, setup, core, state, record):
    record[self.block_config.key] = int(state.step)
    return state
'''


@pytest.fixture(autouse=True)
def _restore_registries():
  """User scores registered by a test leave with it (other test files see the built-ins)."""
  from regularity_jax.metrics import seeds  # pylint: disable=g-import-not-at-top
  saved = (dict(difficulty.SCORES), difficulty.NAMES, difficulty.TRAIN_SCORES,
           difficulty.TEST_SCORES, set(seeds.USER_SUMMED))
  yield
  difficulty.SCORES.clear()
  difficulty.SCORES.update(saved[0])
  difficulty.NAMES, difficulty.TRAIN_SCORES, difficulty.TEST_SCORES = saved[1:4]
  seeds.USER_SUMMED.clear()
  seeds.USER_SUMMED.update(saved[4])


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
  return engine_fixtures.user_folder(tmp_path_factory, my_stat=MY_STAT, my_parts=MY_PARTS)


def assert_one_line(error, *fragments):
  message = str(error)
  assert "\n" not in message, message
  for fragment in fragments:
    assert fragment in message, message


def _enabling(cls) -> ml_collections.ConfigDict:
  """default_config() with `cls` switched on (its smallest valid settings)."""
  c = config_lib.default_config()
  c.holdout.fraction = 0.1  # rho_loss's irreducible-loss model trains on it
  c.pruning.fraction_kept, c.pruning.score = 0.5, "random"
  c.turnover.enabled = True
  c.weighting.scheme = "hard_first"
  c.reduction.enabled = True
  c.aum_threshold.set = 1
  if cls.phase == "prioritization":
    c.prioritization = cls.name
  return c


class TestBlocks:
  """Each part from a ConfigDict holding only its block, the run-wide fields and the fields it
  declares in `reads`: reading any other field fails (`registry.block_view(strict=True)`)."""

  @pytest.mark.parametrize("cls", features_lib.all_classes(), ids=lambda c: c.name)
  def test_feature_built_and_validated_from_its_block(self, cls):
    config = _enabling(cls)
    view = cls.view(config, strict=True)
    cls.validate(view)
    assert cls.enabled(view)
    cls.replica_clash(view)
    part = cls(view)
    assert part.phase in registry.FEATURE_PHASES and part.block
    cls.needs(view)  # what it needs of other parts: checked on the whole config
    assert set(cls.reads) <= {"prioritization", "eval_every", "eval_batch_size", "augment",
                              "crop_padding", "holdout"}

  @pytest.mark.parametrize("cls", evaluators_lib.BUILTINS, ids=lambda c: c.name)
  def test_evaluator_built_from_its_block(self, cls):
    view = registry.block_view(config_lib.default_config(),
                               *((cls.block,) if cls.block else ()), strict=True)
    part = cls(view[cls.block] if cls.block else None, view)
    assert part.phase in registry.EVALUATOR_PHASES
    if cls.block:
      assert part.block_config.normalizer == "frobenius_product"

  def test_a_part_that_reads_another_field_fails(self):
    class Sneaky(Feature):
      name, phase, block = "sneaky", "data", "reduction"

      @classmethod
      def validate(cls, config):
        return config.reduction.fraction * config.learning_rate  # outside its block

    with pytest.raises(AssertionError, match="'learning_rate', outside its block"):
      Sneaky.validate(Sneaky.view(config_lib.default_config(), strict=True))

  def test_run_wide_fields_are_one_list(self):
    view = registry.block_view(config_lib.default_config(), "pruning")
    assert set(view.keys()) == {"pruning", *registry.RUN_WIDE}
    assert registry.RUN_WIDE == ("seed", "num_epochs", "batch_size", "dataset", "model")

  def test_user_statistic_built_from_its_block(self, outside):
    config = config_lib.default_config()
    with config.unlocked():
      config.tracking.entropy = ml_collections.ConfigDict({"scale": 2.0})
    stat = statistics.build(f"{outside}/my_stat.py:EntropyMean",
                            registry.block_view(config, "tracking", strict=True))
    assert stat.scale == 2.0 and difficulty.get("entropy", "train").seeds == "mean"


class TestUserStatistic:

  def test_kernel_against_a_loop(self, outside):
    """The running mean of the entropy, masks, repeats and out-of-range ids, against a plain
    Python loop over the rows."""
    stat = statistics.build(f"{outside}/my_stat.py:EntropyMean")
    n, rng = 6, np.random.default_rng(0)
    state, total, count, dropped = stat.init(n), np.zeros(n), np.zeros(n), 0
    update = jax.jit(stat.update)
    for _ in range(4):
      ids = rng.integers(-1, n + 1, 5)
      logits = rng.normal(size=(5, 3)).astype(np.float32)
      mask = rng.random(5) < 0.8
      state = update(state, jnp.asarray(ids, jnp.int32), jnp.asarray(logits),
                     jnp.zeros(5, jnp.int32), jnp.asarray(mask))
      seen = set()
      for i, row, on in zip(ids, logits, mask):
        if not on:
          continue
        if not 0 <= i < n or i in seen:
          dropped += 1
          continue
        seen.add(i)
        p = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
        total[i] += -(p * np.log(p)).sum()
        count[i] += 1
    table = stat.summarize(state)
    expected = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    np.testing.assert_allclose(table["mean_entropy"], expected, rtol=1e-5)
    assert int(table["dropped"]) == dropped

  @pytest.mark.parametrize("name, fragment", [
      ("NoIdAxis", "leading id axis"), ("NoDrops", "dropped is 0, not 2"),
      ("HostSync", "fails on a probe batch"), ("ZeroUnseen", "never_seen=nan")])
  def test_a_statistic_breaking_the_kernel_rules_is_refused(self, outside, name, fragment):
    with pytest.raises(registry.PartError) as e:
      statistics.build(f"{outside}/my_stat.py:{name}")
    assert_one_line(e.value, f"my_stat.py:{name}", fragment, "docs/parts.md")

  def test_config_names_it_and_it_lands_in_the_tracker(self, outside):
    spec = f"{outside}/my_stat.py:EntropyMean"
    config = config_lib.default_config()
    config.tracking.kernels = ("forgetting", spec)
    config.pruning.score = "entropy"
    config.weighting.score = "entropy"
    config.weighting.scheme = "easy_first"
    config_lib.validate(config)
    config.tracking.kernels = ("forgetting",)
    with pytest.raises(ConfigError) as e:
      config_lib.validate(config)
    assert_one_line(e.value, "weighting.score='entropy' needs the", "my_stat.py:EntropyMean")
    config.tracking.kernels = ("forgetting", spec)
    from regularity_jax import metrics  # pylint: disable=g-import-not-at-top
    tracker = metrics.Tracker(8, kernels=config.tracking.kernels)
    assert "entropy" not in tracker.init("eval_test") and spec not in tracker.init("eval_test")
    assert spec in tracker.init("presentations")
    assert "mean_entropy" in tracker.summarize(tracker.init("presentations"))

  def test_unknown_statistic_is_one_line(self):
    config = config_lib.default_config()
    config.tracking.kernels = ("forgeting",)
    with pytest.raises(ConfigError) as e:
      config_lib.validate(config)
    assert_one_line(e.value, 'did you mean "forgetting"', "'package.module:Name'")

  def test_the_provenance_declares_its_score(self):
    declared = {"spec": "elsewhere.py:Stat", "key": "my_key", "streams": ["eval_train"],
                "direction": "lower_is_harder", "seeds": "mean", "never_seen": None,
                "definition": "x"}
    scores_file.register_statistics({"statistics": {"declared_elsewhere": declared}})
    spec = difficulty.get("declared_elsewhere", "train")
    assert spec.stream == "eval_"
    got = difficulty.from_scores("declared_elsewhere", {
        "train/example_id": np.arange(3), "train/eval_my_key": np.array([1.0, np.nan, 3.0])})
    np.testing.assert_array_equal(got, [-1.0, np.nan, -3.0])


class TestUserFunctions:

  def test_weighting_scheme(self, outside):
    d = jnp.asarray([0.0, 0.5, 1.0])
    got = schemes.weights(f"{outside}/my_parts.py:linear", d, temperature=2.0)
    raw = 1.0 + 2.0 * np.asarray(d)
    np.testing.assert_allclose(got, raw / raw.mean(), rtol=1e-6)
    with pytest.raises(ValueError, match="unknown weighting scheme 'linar'"):
      schemes.weights("linar", d)

  def test_pruning_rule(self, outside):
    scores = np.asarray([5.0, 1.0, 3.0, 2.0, 4.0], np.float32)
    kept = pruning_lib.select(scores, fraction_kept=0.6, rule=f"{outside}/my_parts.py:middle")
    np.testing.assert_array_equal(kept, [2, 3, 4])  # ascending 1, 2, 3: the middle three
    with pytest.raises(ValueError, match="must return 3 distinct positions"):
      pruning_lib.select(scores, fraction_kept=0.6, rule=f"{outside}/my_parts.py:too_few")

  def test_normalizer(self, outside):
    params = {"a": {"kernel": jnp.ones((2, 3))}, "b": {"kernel": 2 * jnp.ones((3,))}}
    user = evaluators_lib.normalizer(f"{outside}/my_parts.py:log_sum_of_squares")
    got = norms.log_network_norm(params, {}, kind=user, model=norms.Layout((), None, ()))
    np.testing.assert_allclose(got, np.log(6 + 12), rtol=1e-6)
    config = config_lib.default_config()
    config.margins.normalizer = f"{outside}/my_parts.py:nothing"
    with pytest.raises(ConfigError) as e:
      config_lib.validate(config)
    assert_one_line(e.value, "has no 'nothing'")


class TestOrder:

  def test_user_method_and_feature_in_phase_order(self, outside):
    config = config_lib.default_config()
    with config.unlocked():
      config.note = ml_collections.ConfigDict({"enabled": True})
    config.features = (f"{outside}/my_parts.py:Note",)
    config.prioritization = f"{outside}/my_parts.py:MyUniform"
    config.pruning.fraction_kept, config.pruning.score = 0.5, "random"
    config.holdout.fraction = 0.1
    config_lib.validate(config)
    names = [f.name for f in features_lib.enabled_features(config)]
    assert names == ["holdout", "note", "pruning", "my_uniform"]
    assert features_lib.method_of(features_lib.enabled_features(config)).name == "my_uniform"

  def test_a_feature_without_a_phase_is_refused(self, outside):
    config = config_lib.default_config()
    config.features = (f"{outside}/my_parts.py:NoPhase",)
    with pytest.raises(ConfigError) as e:
      config_lib.validate(config)
    assert_one_line(e.value, "declares phase ''", "docs/parts.md")

  def test_evaluators_follow_their_phases_not_the_config(self):
    config = config_lib.default_config()
    config.evaluators = ("summaries", "splits")
    config.turnover.enabled = True
    config_lib.validate(config)
    names = [e.name for e in evaluators_lib.enabled_evaluators(config)]
    assert names == ["splits", "turnover", "margins", "summaries"]


  def test_user_evaluator_from_its_block_in_phase_order(self, outside):
    config = config_lib.default_config()
    spec = f"{outside}/my_parts.py:Steps"
    with config.unlocked():
      config.steps_eval = ml_collections.ConfigDict({"key": "my_steps"})
    config.evaluators = (spec, "splits", "summaries")
    config_lib.validate(config)
    parts = evaluators_lib.enabled_evaluators(config)
    assert [e.name for e in parts] == ["splits", "margins", "steps_eval", "summaries"]
    record = {}
    parts[2](None, None, type("State", (), {"step": 7})(), record)
    assert record == {"my_steps": 7}


class TestMigration:

  def test_old_default_evaluators_read_as_today(self):
    config = config_lib.default_config()
    config.evaluators = migration.LEGACY_EVALUATORS
    config_lib.validate(config)
    assert config.evaluators == ("splits", "summaries")
    saved = {"evaluators": list(migration.LEGACY_EVALUATORS), "turnover": {"enabled": True},
             "tracking": {"kernels": ["forgetting"]}}
    assert migration.translate_saved(saved)["evaluators"] == ["splits", "summaries"]

  def test_an_evaluator_that_does_not_apply_is_one_line(self):
    config = config_lib.default_config()
    config.evaluators = ("splits", "turnover")
    with pytest.raises(ConfigError) as e:
      config_lib.validate(config)
    assert_one_line(e.value, "'turnover' needs turn-over dropout",
                    "--config.turnover.enabled=True")


@pytest.mark.slow
def test_user_statistic_model_and_data_prune_and_weight_a_second_run(tmp_path_factory,
                                                                    tmp_path):
  """The issue's acceptance run: a user statistic (running mean of the softmax entropy), a
  user model and a user dataset, all outside the repository; the statistic lands in
  scores.npz and has its grids in the report; a second run prunes by the first run's
  `entropy` score and weights by its own running one."""
  from tests import test_your_data, test_your_model  # pylint: disable=g-import-not-at-top
  from regularity_jax.training import train_and_evaluate  # pylint: disable=g-import-not-at-top
  outside = engine_fixtures.user_folder(tmp_path_factory, my_stat=MY_STAT,
                                        my_data=test_your_data.MY_DATA,
                                        my_model=test_your_model.MY_MODEL)
  stat = f"{outside}/my_stat.py:EntropyMean"

  def config(**overrides):
    c = engine_fixtures.tiny_config("", **overrides, **{
        "tracking.kernels": ("forgetting", "margins", stat)})
    c.dataset = f"{outside}/my_data.py:load"
    c.model = f"{outside}/my_model.py:Net"
    del c.model_kwargs["hidden"]
    return c

  first = train_and_evaluate(config(num_epochs=2, report=True), tmp_path / "first")
  entropy = first.scores["train/mean_entropy"]
  assert entropy.shape == (70,) and np.all(np.isfinite(entropy)) and np.all(entropy > 0)
  assert np.all(first.scores["train/entropy_count"] == 2)
  prov = scores_file.load(first.workdir / "scores.npz").provenance
  assert prov["statistics"]["entropy"]["spec"] == stat
  import hashlib, json  # pylint: disable=g-import-not-at-top,multiple-imports
  recorded = json.loads((first.workdir / "config.json").read_text())["tracking_sources"]
  assert [r["sha256"] for r in recorded.values()] == [
      hashlib.sha256((outside / "my_stat.py").read_bytes()).hexdigest()]
  html = (first.workdir / "report.html").read_text()
  assert "entropy" in html
  assert (first.workdir / "plots" / "grids" / "train_entropy.png").is_file()
  second = train_and_evaluate(config(num_epochs=2, **{
      "pruning.scores_path": str(first.workdir / "scores.npz"), "pruning.score": "entropy",
      "pruning.fraction_kept": 0.5, "pruning.rule": "hardest", "pruning.ties": "stable",
      "weighting.scheme": "hard_first", "weighting.score": "entropy",
      "weighting.start_epoch": 1}), tmp_path / "second")
  kept = np.flatnonzero(second.scores["train/active"])
  np.testing.assert_array_equal(kept, np.sort(np.argsort(-entropy, kind="stable")[:35]))
  weights = second.scores["train/weight"]
  assert not np.allclose(weights, 1.0) and math.isclose(float(weights.mean()), 1.0, rel_tol=1e-5)


def _shipped_configs():
  """(label, engine config) of every shipped config and study (`:smoke` too)."""
  import importlib  # pylint: disable=g-import-not-at-top
  import pathlib  # pylint: disable=g-import-not-at-top
  root = pathlib.Path(__file__).resolve().parents[1] / "regularity_jax"
  names = [f"regularity_jax.configs.{p.stem}" for p in sorted((root / "configs").glob("*.py"))
           if not p.stem.startswith("_")]
  names += [f"regularity_jax.studies.{p.parent.name}.config"
            for p in sorted((root / "studies").glob("*/config.py"))]
  for name in names:
    for arg in ("", "smoke"):
      config = importlib.import_module(name).get_config(arg)
      label = f"{name.split('.')[-2 if name.endswith('.config') else -1]}:{arg}"
      yield pytest.param(label, config.base if "base" in config else config, id=label)


@pytest.mark.parametrize("name, config", list(_shipped_configs()))
def test_every_shipped_config_and_study_validates_as_today(name, config):
  """Their spellings keep working (docs/migration.md): each validates and names its parts."""
  config = config.copy_and_resolve_references()
  config_lib.validate(config)
  assert features_lib.method_of(features_lib.enabled_features(config)), name
  assert evaluators_lib.enabled_evaluators(config), name
