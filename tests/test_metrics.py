"""Metric kernels against the slow NumPy reference in metrics_reference.py."""

import functools

import chex
import hypothesis
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regularity_jax import metrics
from regularity_jax.metrics import confidence
from regularity_jax.metrics import cumulative
from regularity_jax.metrics import forgetting
from regularity_jax.metrics import indexing
from regularity_jax.metrics import losses
from regularity_jax.metrics import margins
from tests import metrics_reference

INT_KEYS = ("forgetting_events", "learning_events", "first_learned", "first_forgotten",
            "observations",
            "cumulative_correct")
BOOL_KEYS = ("unforgettable", "never_learned")


def random_stream(seed, num_examples=13, num_classes=4, batch=6, steps=25, tie_logits=True,
                  bad_ids=False):
  """A stream of padded batches: unique real ids, padding rows with duplicate/garbage ids.

  Some examples are never seen (ids drawn from the first num_examples - 2), logits are small
  integers so that argmax ties and zero margins happen, labels are fixed per example. With
  `bad_ids`, some UNMASKED rows carry an id outside [0, N) (-1, N, N + 3) or repeat a real id
  of the same batch: the kernels must drop them (and count them).
  """
  rng = np.random.default_rng(seed)
  labels_of = rng.integers(0, num_classes, num_examples)
  stream = []
  for _ in range(steps):
    n_real = int(rng.integers(0, batch + 1))
    real = rng.choice(num_examples - 2, size=n_real, replace=False)
    pad = rng.choice([0, 1, -1, num_examples + 3, int(real[0]) if n_real else 0],
                     size=batch - n_real)
    ids = np.concatenate([real, pad]).astype(np.int32)
    mask = np.arange(batch) < n_real
    if bad_ids and batch - n_real > 0:
      bad = int(rng.integers(0, batch - n_real + 1))
      choices = [-1, num_examples, num_examples + 3] + ([int(x) for x in real] * 2)
      ids[n_real:n_real + bad] = rng.choice(choices, size=bad)
      mask = np.arange(batch) < n_real + bad
    order = rng.permutation(batch)  # padding is not always at the end
    ids, mask = ids[order], mask[order]
    if tie_logits:
      logits = rng.integers(-2, 3, (batch, num_classes)).astype(np.float32)
    else:
      logits = rng.normal(size=(batch, num_classes)).astype(np.float32) * 3
    labels = labels_of[np.clip(ids, 0, num_examples - 1)].astype(np.int32)
    stream.append((ids, logits, labels, mask))
  return stream


def run_tracker(tracker, stream, jit):
  update = jax.jit(tracker.update) if jit else tracker.update
  state = tracker.init()
  for ids, logits, labels, mask in stream:
    state = update(state, ids, logits, labels, mask)
  return jax.device_get(tracker.summarize(state))


def assert_matches_reference(table, ref, keys):
  for key in keys:
    if key == "dropped":
      assert np.asarray(table[key]).dtype == np.int32 and np.ndim(table[key]) == 0
      assert int(table[key]) == int(ref[key]), ("dropped", int(table[key]), int(ref[key]))
      continue
    got, want = np.asarray(table[key]), ref[key]
    if key in INT_KEYS:
      assert got.dtype == np.int32, key
      np.testing.assert_array_equal(got, want, err_msg=key)
    elif key in BOOL_KEYS:
      assert got.dtype == bool, key
      np.testing.assert_array_equal(got, want, err_msg=key)
    else:
      assert got.dtype == np.float32, key
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("module", [forgetting, cumulative, margins, confidence, losses],
                         ids=lambda m: m.__name__.rsplit(".", 1)[-1])
class TestKernelAgainstPlainImplementation:

  @pytest.mark.parametrize("jit", [False, True])
  @pytest.mark.parametrize("seed", [0, 1])
  @pytest.mark.parametrize("bad_ids", [False, True])
  def test_against_plain_implementation(self, module, jit, seed, bad_ids):
    stream = random_stream(seed, tie_logits=seed == 0, bad_ids=bad_ids)
    update = jax.jit(module.update) if jit else module.update
    state = module.init(13)
    for ids, logits, labels, mask in stream:
      state = update(state, ids, logits, labels, mask)
    table = jax.device_get(module.summarize(state))
    assert set(table) == set(module.SUMMARY_KEYS) | {"dropped"}
    ref = metrics_reference.reference_stats(13, stream)
    assert (ref["dropped"] > 0) == bad_ids  # the stream really holds bad rows
    assert_matches_reference(table, ref, tuple(module.SUMMARY_KEYS) + ("dropped",))

  def test_id_minus_one_leaves_the_last_row_alone(self, module):
    # `.at[-1]` would write row N-1: an out-of-range id must change nothing but `dropped`.
    state = module.init(4)
    after = module.update(state, jnp.array([-1, 4]), jnp.eye(2, 3), jnp.array([0, 1]))
    chex.assert_trees_all_equal(state._replace(dropped=after.dropped), after)
    assert int(after.dropped) == 2

  def test_duplicated_id_counts_once(self, module):
    # The first unmasked row of an id counts, in every field; the repeat is dropped.
    ids, labels = jnp.array([2, 2, 0]), jnp.array([0, 1, 1])
    logits = jnp.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 3.0, 0.0]])
    got = module.update(module.init(3), ids, logits, labels)
    want = module.update(module.init(3), ids, logits, labels, jnp.array([True, False, True]))
    chex.assert_trees_all_equal(got._replace(dropped=want.dropped), want)
    assert int(got.dropped) == 1 and int(want.dropped) == 0
    assert int(module.summarize(got)["observations"][2]) == 1

  def test_checkify_fails_on_dropped_rows(self, module):
    from jax.experimental import checkify
    checked = jax.jit(checkify.checkify(module.update, errors=checkify.user_checks))
    with indexing.debug_checks():  # traced at the first call
      err, _ = checked(module.init(4), jnp.array([1, 2]), jnp.eye(2, 3), jnp.array([0, 1]))
    assert err.get() is None
    err, _ = checked(module.init(4), jnp.array([1, 7]), jnp.eye(2, 3), jnp.array([0, 1]))
    assert "outside [0, 4)" in err.get()
    err, _ = checked(module.init(4), jnp.array([1, 1]), jnp.eye(2, 3), jnp.array([0, 1]))
    assert "repeat an id" in err.get()
    # Traced outside `debug_checks`, the same program holds no check.
    unchecked = jax.jit(checkify.checkify(module.update, errors=checkify.user_checks))
    err, _ = unchecked(module.init(4), jnp.array([1, 7]), jnp.eye(2, 3), jnp.array([0, 1]))
    assert err.get() is None

  def test_every_trace_lowers_to_the_same_program(self, module):
    # What JAX's persistent compilation cache keys on: a rerun's step must hit it.
    args = (module.init(4), jnp.array([1, 2]), jnp.eye(2, 3), jnp.array([0, 1]))
    texts = {jax.jit(lambda *a: module.update(*a)).lower(*args).as_text() for _ in range(2)}
    assert len(texts) == 1

  def test_mask_false_changes_nothing(self, module):
    state = module.update(module.init(5), jnp.array([0, 1]), jnp.eye(2, 3), jnp.array([0, 2]))
    after = module.update(state, jnp.array([0, 1, 4]), jnp.ones((3, 3)), jnp.array([1, 1, 1]),
                          jnp.array([False, False, False]))
    chex.assert_trees_all_equal(state, after)

  def test_mask_none_means_all_rows(self, module):
    ids, logits, labels = jnp.array([3, 0]), jnp.eye(2, 3), jnp.array([0, 0])
    chex.assert_trees_all_equal(
        module.update(module.init(4), ids, logits, labels),
        module.update(module.init(4), ids, logits, labels, jnp.array([True, True])))

  def test_dtypes(self, module):
    state = module.init(7)
    for name, leaf in state._asdict().items():
      assert leaf.shape == (() if name == "dropped" else (7,)), name
      assert leaf.dtype in (jnp.int32, jnp.float32, jnp.bool_)

  def test_init_state_can_be_donated(self, module):
    # Every field must be its own buffer: a jitted step that donates the state would otherwise
    # fail with "donate the same buffer twice".
    state = module.init(6)
    leaves = jax.tree_util.tree_leaves(state)
    assert len({id(leaf) for leaf in leaves}) == len(leaves)
    step = jax.jit(module.update, donate_argnums=0)
    step(state, jnp.array([0, 1]), jnp.eye(2, 3), jnp.array([0, 1]))

  def test_bf16_logits(self, module):
    stream = random_stream(3, tie_logits=True)
    state = module.init(13)
    for ids, logits, labels, mask in stream:  # small integers are exact in bf16
      state = module.update(state, ids, jnp.asarray(logits, jnp.bfloat16), labels, mask)
    assert_matches_reference(jax.device_get(module.summarize(state)),
                             metrics_reference.reference_stats(13, stream), module.SUMMARY_KEYS)


class TestForgettingSemantics:
  """Hand-written sequences for the definitions that are easiest to get wrong."""

  def _run(self, correct_sequence):
    state = forgetting.init(1)
    for c in correct_sequence:
      logits = jnp.array([[1.0, 0.0]]) if c else jnp.array([[0.0, 1.0]])
      state = forgetting.update(state, jnp.array([0]), logits, jnp.array([0]))
    return {k: int(v[0]) for k, v in forgetting.summarize(state).items() if k != "dropped"}

  def test_first_observation_previous_counts_as_wrong(self):
    assert self._run([0])["forgetting_events"] == 0  # wrong first: not a forgetting event
    assert self._run([1])["learning_events"] == 1    # correct first: a learning event

  def test_sequence(self):
    got = self._run([0, 1, 1, 0, 1, 0, 0])
    assert got == {"forgetting_events": 2, "learning_events": 2, "first_learned": 1,
                   "first_forgotten": 3, "unforgettable": 0, "never_learned": 0, "observations": 7}

  def test_never_learned_is_flagged_and_ranked_most_forgotten(self):
    assert self._run([0, 0, 0])["never_learned"] == 1
    assert self._run([0, 0, 0])["forgetting_events"] == 0
    summary = {"forgetting_events": jnp.array([0, 2, 0, 0]),
               "never_learned": jnp.array([True, False, False, False]),
               "observations": jnp.array([5, 5, 5, 0])}
    # Toneva's rule: never learned counts the 5 presentations, more than any event count.
    np.testing.assert_array_equal(metrics.difficulty.score("forgetting", summary),
                                  [5, 2, 0, np.nan])

  def test_unseen_example_is_neither(self):
    table = forgetting.summarize(forgetting.init(2))
    assert not table["never_learned"].any() and not table["unforgettable"].any()
    np.testing.assert_array_equal(table["first_learned"], [-1, -1])
    np.testing.assert_array_equal(table["first_forgotten"], [-1, -1])


class TestLogitMargin:

  def test_values(self):
    logits = jnp.array([[3.0, 1.0, 2.0], [0.0, 5.0, 5.0], [1.0, 1.0, 4.0]])
    np.testing.assert_allclose(metrics.logit_margin(logits, jnp.array([0, 1, 0])), [1.0, 0.0, -3.0])

  def test_invariant_to_shift(self):
    logits = jax.random.normal(jax.random.key(0), (16, 10))
    labels = jnp.arange(16) % 10
    np.testing.assert_allclose(metrics.logit_margin(logits + 7.0, labels),
                               metrics.logit_margin(logits, labels), atol=1e-5)


class TestEl2n:

  def test_against_plain_implementation(self):
    logits = np.random.default_rng(0).normal(size=(32, 10)).astype(np.float32) * 4
    labels = np.arange(32) % 10
    np.testing.assert_allclose(metrics.el2n(logits, labels),
                               metrics_reference.reference_el2n(logits, labels), rtol=1e-5)

  def test_range(self):
    assert float(metrics.el2n(jnp.array([[100.0, 0.0]]), jnp.array([0]))[0]) < 1e-6
    np.testing.assert_allclose(metrics.el2n(jnp.array([[100.0, 0.0]]), jnp.array([1])), [2**0.5])


class TestGrand:

  def _problem(self):
    key_w, key_x = jax.random.split(jax.random.key(0))
    params = {"w": jax.random.normal(key_w, (5, 3)), "b": jnp.zeros(3)}
    batch = {"x": jax.random.normal(key_x, (8, 5)), "y": jnp.arange(8) % 3}

    def loss_fn(p, example):
      logits = example["x"] @ p["w"] + p["b"]
      return -jax.nn.log_softmax(logits)[example["y"]]
    return loss_fn, params, batch

  def test_against_plain_implementation(self):
    loss_fn, params, batch = self._problem()
    want = []
    for i in range(8):  # one gradient at a time, by hand
      g = jax.grad(loss_fn)(params, {"x": batch["x"][i], "y": batch["y"][i]})
      want.append(np.sqrt(sum(np.sum(np.square(np.asarray(v))) for v in g.values())))
    np.testing.assert_allclose(metrics.grand(loss_fn, params, batch), want, rtol=1e-5)
    np.testing.assert_allclose(jax.jit(functools.partial(metrics.grand, loss_fn, chunk_size=4))(
        params, batch), want, rtol=1e-5)

  def test_linear_softmax_closed_form(self):
    # For softmax regression, grad_w = x (p - onehot)^T and grad_b = p - onehot, so
    # ||grad||^2 = (||x||^2 + 1) * ||p - onehot||^2 = (||x||^2 + 1) * EL2N^2.
    loss_fn, params, batch = self._problem()
    logits = batch["x"] @ params["w"] + params["b"]
    expected = jnp.sqrt(jnp.sum(batch["x"] ** 2, -1) + 1) * metrics.el2n(logits, batch["y"])
    np.testing.assert_allclose(metrics.grand(loss_fn, params, batch), expected, rtol=1e-5)


class TestTracker:

  @pytest.mark.parametrize("jit", [False, True])
  def test_against_plain_implementation(self, jit):
    stream = random_stream(7)
    tracker = metrics.Tracker(13)
    table = run_tracker(tracker, stream, jit)
    assert set(table) == set(tracker.summary_keys) | {"dropped"}
    assert_matches_reference(table, metrics_reference.reference_stats(13, stream), table.keys())

  def test_bad_ids_against_plain_implementation(self):
    stream = random_stream(8, bad_ids=True)
    table = run_tracker(metrics.Tracker(13), stream, jit=True)
    ref = metrics_reference.reference_stats(13, stream)
    assert ref["dropped"] > 0
    assert_matches_reference(table, ref, table.keys())

  def test_every_kernel_gives_one_observation_for_a_duplicated_id(self):
    tracker = metrics.Tracker(5)
    state = tracker.update(tracker.init(), jnp.array([3, 3, -1]), jnp.eye(3, 4),
                           jnp.array([0, 1, 2]))
    for name in tracker.kernels:
      observations = metrics.KERNELS[name].summarize(state[name])["observations"]
      np.testing.assert_array_equal(observations, [0, 0, 0, 1, 0], err_msg=name)
    assert int(tracker.summarize(state)["dropped"]) == 2
    tracker = metrics.Tracker(5, kernels=("margins",))
    assert tracker.summary_keys == ("last_margin", "aum", "observations")
    assert set(tracker.init()) == {"margins"}

  def test_unknown_kernel(self):
    with pytest.raises(ValueError, match="unknown metric kernel.*choose from"):
      metrics.Tracker(5, kernels=("margin",))

  def test_hashable_for_static_args(self):
    assert hash(metrics.Tracker(5)) == hash(metrics.Tracker(5))

  def test_dataframe_and_npz(self, tmp_path):
    stream = random_stream(2)
    tracker = metrics.Tracker(13)
    table = run_tracker(tracker, stream, jit=True)
    observed = np.flatnonzero(table["observations"] > 0)
    assert 0 < len(observed) < 13  # ids 11 and 12 are never drawn
    frame = tracker.to_dataframe(table)
    assert frame.index.name == "example_id" and list(frame.index) == list(observed)
    assert "dropped" not in frame.columns
    np.testing.assert_array_equal(frame["forgetting_events"].to_numpy(),
                                  table["forgetting_events"][observed])
    sub = tracker.to_dataframe(table, example_ids=[4, 2, 12])
    assert list(sub.index) == [4, 2, 12]
    assert sub.loc[2, "observations"] == table["observations"][2]
    with pytest.raises(ValueError, match="outside"):
      tracker.to_dataframe(table, example_ids=[13])
    tracker.save_npz(tmp_path / "s.npz", table, prefix="train/")
    with np.load(tmp_path / "s.npz") as z:
      np.testing.assert_array_equal(z["train/example_id"], observed)
      np.testing.assert_array_equal(z["train/cumulative_correct"],
                                    table["cumulative_correct"][observed])
      assert int(z["train/dropped"]) == int(table["dropped"])

  def test_dataframe_of_a_subset_run_averages_only_its_examples(self):
    # A 3-example run on a 10-id space: unforgettable.mean() must be over those 3, not 10.
    tracker = metrics.Tracker(10)
    update = jax.jit(tracker.update)
    state = tracker.init()
    for _ in range(3):
      state = update(state, jnp.array([1, 4, 7]), jnp.eye(3, 2), jnp.array([0, 1, 1]))
    frame = tracker.to_dataframe(tracker.summarize(state))
    assert list(frame.index) == [1, 4, 7]
    assert frame["unforgettable"].mean() == pytest.approx(2 / 3)


_N, _C, _B = 8, 3, 4
_jitted_update = jax.jit(metrics.Tracker(_N).update)


@st.composite
def streams(draw):
  steps = draw(st.integers(1, 12))
  out = []
  for _ in range(steps):
    # Unmasked rows may repeat ids or leave [0, N): the kernels count them as dropped.
    real = draw(st.lists(st.integers(-2, _N + 1), max_size=_B))
    ids = real + draw(st.lists(st.integers(-3, _N + 3), min_size=_B - len(real),
                               max_size=_B - len(real)))
    mask = [True] * len(real) + [False] * (_B - len(real))
    logits = draw(st.lists(st.lists(st.sampled_from([-1.0, 0.0, 0.5, 2.0]), min_size=_C,
                                    max_size=_C), min_size=_B, max_size=_B))
    labels = draw(st.lists(st.integers(0, _C - 1), min_size=_B, max_size=_B))
    out.append((np.asarray(ids, np.int32), np.asarray(logits, np.float32),
                np.asarray(labels, np.int32), np.asarray(mask)))
  return out


@hypothesis.settings(max_examples=60, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.too_slow])
@hypothesis.given(streams())
def test_property_tracker_matches_reference(stream):
  tracker = metrics.Tracker(_N)
  state = tracker.init()
  for ids, logits, labels, mask in stream:
    state = _jitted_update(state, ids, logits, labels, mask)
  table = jax.device_get(tracker.summarize(state))
  ref = metrics_reference.reference_stats(_N, stream)
  assert_matches_reference(table, ref, table.keys())
  # Invariants that hold for every stream.
  assert np.all(table["learning_events"] - table["forgetting_events"] >= 0)
  assert np.all(table["learning_events"] - table["forgetting_events"] <= 1)
  assert np.all(table["cumulative_correct"] <= table["observations"])
  assert not np.any(table["unforgettable"] & table["never_learned"])


class TestFirstOccurrence:

  def test_repeats_and_padding(self):
    from regularity_jax.metrics import indexing
    ids = jnp.array([5, 3, 5, 7, 3, 5, 9])
    mask = jnp.array([True, True, True, False, True, True, False])
    np.testing.assert_array_equal(indexing.first_occurrence(ids, mask),
                                  [True, True, False, False, False, False, False])

  def test_masked_first_copy_does_not_hide_a_real_one(self):
    from regularity_jax.metrics import indexing
    ids = jnp.array([4, 4, 2])
    mask = jnp.array([False, True, True])
    np.testing.assert_array_equal(indexing.first_occurrence(ids, mask), [False, True, True])
