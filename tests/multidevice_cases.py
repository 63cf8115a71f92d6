"""The checks that need 4 devices, as plain functions: tests/test_multidevice.py runs each in
its own process with XLA_FLAGS=--xla_force_host_platform_device_count=4 (XLA reads the flag
once, when JAX starts, so the rest of the suite keeps one device)."""

import pathlib

import chex
import jax
import numpy as np

from regularity_jax import metrics
from regularity_jax.training import ConfigError
from regularity_jax.training import train_and_evaluate
from tests import engine_fixtures
from tests import metrics_reference
from tests.test_metrics import assert_matches_reference
from tests.test_metrics import random_stream
from tests.test_metrics import run_tracker
from tests.test_training import assert_scores_equal


def _four_devices():
  assert jax.device_count() == 4, f"expected 4 fake devices, have {jax.device_count()}"


def metrics_sharded_update_matches_one_device(tmp: str) -> None:
  """The kernels' update of a batch sharded over 4 devices equals the single-device update."""
  del tmp
  _four_devices()
  mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  batch_sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  tracker = metrics.Tracker(13)
  stream = random_stream(11, batch=8, steps=20, bad_ids=True)
  sharded_update = jax.jit(tracker.update, out_shardings=replicated)
  state = jax.device_put(tracker.init(), replicated)
  for ids, logits, labels, mask in stream:
    ids, logits, labels, mask = jax.device_put((ids, logits, labels, mask), batch_sharding)
    assert len(ids.sharding.device_set) == 4
    state = sharded_update(state, ids, logits, labels, mask)
  sharded = jax.device_get(tracker.summarize(state))
  single = run_tracker(tracker, stream, jit=True)
  chex.assert_trees_all_close(sharded, single, rtol=1e-6)
  assert_matches_reference(sharded, metrics_reference.reference_stats(13, stream), sharded.keys())


def engine_four_devices_match_one(tmp: str) -> None:
  """A run on 4 devices (batch sharded) equals the run on 1 device."""
  _four_devices()
  tmp = pathlib.Path(tmp)
  engine_fixtures.write_tiny_npz(tmp / "data")
  runs = {}
  for n in (1, 4):
    config = engine_fixtures.tiny_config(tmp / "data", num_epochs=3, num_devices=n)
    runs[n] = train_and_evaluate(config, tmp / f"dev{n}")
  # Gradients are all-reduced in another order on 4 devices: floats agree to rounding.
  assert_scores_equal(runs[1].scores, runs[4].scores, float_atol=1e-4)
  for a, b in zip(runs[1].metrics, runs[4].metrics):
    assert a["train_accuracy"] == b["train_accuracy"]
    np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-5)


def seeds_on_four_devices_match_one(tmp: str) -> None:
  """Vmapped replicas (num_seeds=2) with the batch sharded over 4 devices equal 1 device."""
  _four_devices()
  tmp = pathlib.Path(tmp)
  engine_fixtures.write_tiny_npz(tmp / "data")
  runs = {n: train_and_evaluate(engine_fixtures.tiny_config(tmp / "data", num_epochs=2,
                                                            num_seeds=2, num_devices=n),
                                tmp / f"seeds{n}") for n in (1, 4)}
  assert_scores_equal(runs[1].scores, runs[4].scores, float_atol=1e-4)


def own_dropout_four_devices_match_one(tmp: str) -> None:
  """A user model whose nnx.Dropout draws from its own Rngs: 4 devices equal 1 (the masks come
  from the step key, not from a device's stream)."""
  from tests.test_your_model import DROP_MODEL  # pylint: disable=g-import-not-at-top
  _four_devices()
  tmp = pathlib.Path(tmp)
  engine_fixtures.write_tiny_npz(tmp / "data")
  (tmp / "drop.py").write_text(DROP_MODEL)
  runs = {}
  for n in (1, 4):
    config = engine_fixtures.tiny_config(tmp / "data", num_epochs=3, num_devices=n,
                                         model=f"{tmp}/drop.py:DropNet")
    del config.model_kwargs["hidden"]
    runs[n] = train_and_evaluate(config, tmp / f"dev{n}")
  # Gradients are all-reduced in another order on 4 devices: floats agree to rounding; other
  # masks would change the trajectory far beyond that (and the integer scores).
  assert_scores_equal(runs[1].scores, runs[4].scores, float_atol=1e-4)
  for a, b in zip(runs[1].metrics, runs[4].metrics):
    assert a["train_accuracy"] == b["train_accuracy"]
    np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-5)


def batch_not_divisible_by_devices(tmp: str) -> None:
  _four_devices()
  tmp = pathlib.Path(tmp)
  engine_fixtures.write_tiny_npz(tmp / "data")
  config = engine_fixtures.tiny_config(tmp / "data", batch_size=18, num_devices=4)
  try:
    train_and_evaluate(config, tmp / "run")
  except ConfigError as e:
    assert "batch_size=18 is not a positive multiple of the 4" in str(e), e
  else:
    raise AssertionError("a batch of 18 on 4 devices was accepted")


def stream_four_devices_match_device(tmp: str) -> None:
  """Stream mode on 4 devices (rows put sharded along the batch) equals device mode there, with
  vmapped seeds and augmentation."""
  _four_devices()
  tmp = pathlib.Path(tmp)
  engine_fixtures.write_tiny_npz(tmp / "data")
  runs = {}
  for mode in ("device", "stream"):
    config = engine_fixtures.tiny_config(tmp / "data", num_epochs=2, num_seeds=2, augment=True,
                                         crop_padding=2, input_pipeline=mode)
    runs[mode] = train_and_evaluate(config, tmp / mode)
  assert_scores_equal(runs["device"].scores, runs["stream"].scores, float_atol=1e-6)


def sharded_statistics_equal_replicated(tmp: str) -> None:
  """shard_statistics=True: every tracker array of the final state holds N/4 rows per device
  (the id space of 98 padded to 100), and the scores equal the replicated run's (integers
  identical, floats within 1e-6), with and without vmapped seeds (rows sharded on axis 1)."""
  from regularity_jax.training import loop  # pylint: disable=g-import-not-at-top
  _four_devices()
  tmp = pathlib.Path(tmp)
  engine_fixtures.write_tiny_npz(tmp / "data", n_train=98, n_test=50)
  final_states = {}
  real = loop.collect_scores

  def keep_state(setup, features, evaluators, state, split):
    final_states[setup.config.shard_statistics, setup.config.num_seeds] = (setup, state)
    return real(setup, features, evaluators, state, split)

  loop.collect_scores = keep_state
  try:
    for seeds in (1, 2):
      runs = {}
      for shard in (False, True):
        config = engine_fixtures.tiny_config(tmp / "data", num_epochs=3, num_seeds=seeds,
                                             shard_statistics=shard)
        runs[shard] = train_and_evaluate(config, tmp / f"s{seeds}_{shard}")
      assert_scores_equal(runs[False].scores, runs[True].scores, float_atol=1e-6)
      setup, state = final_states[True, seeds]
      assert setup.id_space == 100  # 98 ids padded to a multiple of 4
      for stats in (state.train_stats, state.eval_stats["train"], state.eval_stats["test"]):
        for leaf in jax.tree.leaves(stats):
          rows_axis = 1 if seeds > 1 else 0
          if leaf.ndim > rows_axis and leaf.shape[rows_axis] == 100:
            expected = list(leaf.shape)
            expected[rows_axis] = 25
            assert leaf.sharding.shard_shape(leaf.shape) == tuple(expected), leaf.sharding
            assert len(leaf.addressable_shards) == 4
            assert {s.data.shape for s in leaf.addressable_shards} == {tuple(expected)}
            assert len({str(s.index) for s in leaf.addressable_shards}) == 4  # 4 distinct blocks
          else:
            assert leaf.sharding.is_fully_replicated
      _, replicated = final_states[False, seeds]
      assert all(leaf.sharding.is_fully_replicated for leaf in jax.tree.leaves(
          replicated.train_stats))
  finally:
    loop.collect_scores = real


def bijection_plan_four_devices_match_one(tmp: str) -> None:
  """epoch_plan=bijection: the plan compiled with its columns sharded over 4 devices holds only
  [S, B/4] arrays per device (no sort, nothing of size N, no all-gather), and a run on 4 devices
  equals the run on 1 device, every example presented once per epoch."""
  import re  # pylint: disable=g-import-not-at-top
  from regularity_jax.data import batching  # pylint: disable=g-import-not-at-top
  _four_devices()
  mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "data"))
  program = jax.jit(lambda key: batching.bijection_batches(key, 1000, 64),
                    out_shardings=(rows, rows)).lower(jax.random.key(0)).compile().as_text()
  shapes = set(re.findall(r"[su]32\[(\d+),(\d+)\]", program))
  assert shapes == {("16", "16"), ("16", "1")}, shapes
  assert "sort" not in program and "all-gather" not in program
  tmp = pathlib.Path(tmp)
  engine_fixtures.write_tiny_npz(tmp / "data")
  runs = {}
  for n in (1, 4):
    config = engine_fixtures.tiny_config(tmp / "data", num_epochs=2, num_devices=n,
                                         epoch_plan="bijection")
    runs[n] = train_and_evaluate(config, tmp / f"bijection{n}")
  assert_scores_equal(runs[1].scores, runs[4].scores, float_atol=1e-4)
  n_train = len(runs[1].scores["train/example_id"])
  for a, b in zip(runs[1].metrics, runs[4].metrics):
    assert a["examples_presented"] == b["examples_presented"] == n_train
    assert a["train_accuracy"] == b["train_accuracy"]
    np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-5)
