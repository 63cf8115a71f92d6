"""The counter-based epoch plan (`data.bijection`, `epoch_plan="bijection"`): against a slow
Python reference of the same Feistel rounds, a permutation at odd N, the same order however its
columns are split over devices, and its config rules."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regularity_jax.data import batching
from regularity_jax.data import bijection
from regularity_jax.runs.directory import RunDirectory
from regularity_jax.runs.directory import RunDirectoryError
from regularity_jax.training import ConfigError
from regularity_jax.training import default_config
from regularity_jax.training.config import validate

SIZES = (1, 2, 7, 97, 1000, 4097)
M32 = 0xFFFFFFFF


def reference_hash(x: int) -> int:
  x ^= x >> 16
  x = (x * 0x7FEB352D) & M32
  x ^= x >> 15
  x = (x * 0x846CA68B) & M32
  return x ^ (x >> 16)


def reference_permute(position: int, keys, n: int) -> int:
  """One position at a time in Python integers: the network, then cycle-walking."""
  bits = (n - 1).bit_length()
  left_bits, right_bits = bits // 2, bits - bits // 2
  x = position
  while True:
    left, right = x >> right_bits, x & (2**right_bits - 1)
    for r, key in enumerate(keys):
      if r % 2 == 0:
        left ^= reference_hash(right ^ key) & (2**left_bits - 1)
      else:
        right ^= reference_hash(left ^ key) & (2**right_bits - 1)
    x = (left << right_bits) | right
    if x < n:
      return x


def keys_of(seed: int, epoch: int = 0) -> jax.Array:
  return bijection.round_keys(jax.random.fold_in(jax.random.key(seed), epoch))


LENGTH = 4104  # one shape for every call of `permute` below: one compiled program


@jax.jit
def _permute(positions, keys, n):
  return bijection.permute(positions, keys, n)


def permute(positions, keys, n: int) -> np.ndarray:
  """`bijection.permute` of up to LENGTH positions, padded to LENGTH (n traced)."""
  positions = np.asarray(positions, np.int32)
  padded = np.zeros(LENGTH, np.int32)
  padded[:positions.size] = positions.ravel()
  return np.asarray(_permute(padded, keys, np.int32(n)))[:positions.size].reshape(positions.shape)


plan = jax.jit(batching.bijection_batches, static_argnums=(1, 2))


class TestPermute:

  @pytest.mark.parametrize("n", (7, 97, 4097))
  def test_against_plain_implementation(self, n):
    keys = keys_of(3)
    plain = [reference_permute(p, [int(k) for k in np.asarray(keys)], n) for p in range(n)]
    np.testing.assert_array_equal(permute(np.arange(n), keys, n), plain)

  @pytest.mark.parametrize("n", SIZES)
  def test_every_example_exactly_once(self, n):
    order = permute(np.arange(n), keys_of(0), n)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))

  def test_epochs_and_seeds_give_other_orders(self):
    n = 1000
    orders = {(seed, epoch): tuple(permute(np.arange(n), keys_of(seed, epoch), n))
              for seed in (0, 1) for epoch in (0, 1, 2)}
    assert len(set(orders.values())) == len(orders)
    assert tuple(range(n)) not in orders.values()

  @pytest.mark.parametrize("n", SIZES)
  @pytest.mark.parametrize("devices", (1, 2, 4))
  def test_columns_split_over_devices_reassemble_the_epoch(self, n, devices):
    """Each device evaluates only its own columns of the [S, B] plan (flat positions
    s * B + b mod N for its b's); put side by side they are one epoch: every example once."""
    batch, width = 8, 8 // devices
    steps = batching.num_steps(n, batch)
    keys = keys_of(11)
    parts = []
    for d in range(devices):
      flat = np.arange(steps)[:, None] * batch + np.arange(d * width, (d + 1) * width)[None, :]
      parts.append(permute(flat % n, keys, n))
    positions = np.concatenate(parts, axis=1).ravel()
    whole = permute(np.arange(steps * batch) % n, keys, n)
    np.testing.assert_array_equal(positions, whole)
    np.testing.assert_array_equal(np.sort(positions[:n]), np.arange(n))
    np.testing.assert_array_equal(positions[n:], positions[:steps * batch - n])  # wraps around

  def test_too_many_examples_refused(self):
    with pytest.raises(ValueError, match="needs 1 <= n"):
      bijection.permute(jnp.arange(3), keys_of(0), 2**31)


class TestBijectionBatches:
  """The plan with a static N (as the engine compiles it), against `permute` of a traced N."""

  def test_the_plan_is_the_permutation_by_position(self):
    n, key = 97, jax.random.key(2)
    positions, mask = plan(key, n, 8, jnp.ones(n, bool))
    steps = batching.num_steps(n, 8)
    assert positions.shape == mask.shape == (steps, 8)
    flat = np.arange(steps * 8) % n
    np.testing.assert_array_equal(
        positions, permute(flat, bijection.round_keys(key), n).reshape(steps, 8))
    np.testing.assert_array_equal(np.asarray(mask).ravel(), np.arange(steps * 8) < n)

  def test_inactive_rows_are_masked_in_place(self):
    active = np.zeros(97, bool)
    active[[2, 5, 96]] = True
    key = jax.random.key(2)
    positions, mask = plan(key, 97, 8, jnp.asarray(active))
    full, full_mask = plan(key, 97, 8, jnp.ones(97, bool))
    np.testing.assert_array_equal(positions, full)
    np.testing.assert_array_equal(mask, np.asarray(full_mask) & active[np.asarray(full)])
    assert sorted(np.asarray(positions)[np.asarray(mask)].tolist()) == [2, 5, 96]


class TestShuffledPlan:
  """`prioritization.base.shuffled_plan` (uniform, Selective-Backprop, RHO-LOSS) follows
  config.epoch_plan: the default draws today's permutation, "bijection" the new plan."""

  @staticmethod
  def plan_of(epoch_plan):
    import types  # pylint: disable=g-import-not-at-top
    from regularity_jax.training.features.prioritization import base  # pylint: disable=g-import-not-at-top
    config = default_config()
    config.epoch_plan = epoch_plan
    setup = types.SimpleNamespace(config=config, n_train=97)
    state = types.SimpleNamespace(rng=lambda stream: jax.random.key(7), active=jnp.ones(97, bool))
    return base.shuffled_plan(setup, state, 3, 8), base.epoch_key(state, 3)

  @pytest.mark.slow  # two plans traced op by op: seconds
  def test_each_plan_is_its_own(self):
    bijective, key = self.plan_of("bijection")
    np.testing.assert_array_equal(bijective["positions"],
                                  plan(key, 97, 8, jnp.ones(97, bool))[0])
    assert int(bijective["num_active"]) == 97
    default, _ = self.plan_of("permutation")
    np.testing.assert_array_equal(default["positions"], batching.epoch_batches(key, 97, 8)[0])
    assert not np.array_equal(default["positions"], bijective["positions"])


class TestConfig:

  def test_default_is_todays_plan(self):
    assert default_config().epoch_plan == "permutation"

  @pytest.mark.parametrize("fields, match", [
      ({"epoch_plan": "feistel"}, "unknown epoch_plan"),
      ({"epoch_plan": "bijection", "prioritization": "infobatch"}, "draws its own plan"),
      ({"epoch_plan": "bijection", "pruning.fraction_kept": 0.5}, "pruning.fraction_kept"),
      ({"epoch_plan": "bijection", "reduction.enabled": True}, "reduction.enabled"),
  ])
  def test_refusals_are_one_line(self, fields, match):
    config = default_config()
    for dotted, value in fields.items():
      holder = config
      *parents, name = dotted.split(".")
      for parent in parents:
        holder = holder[parent]
      holder[name] = value
    with pytest.raises(ConfigError, match=match) as e:
      validate(config)
    assert "\n" not in str(e.value) and "epoch_plan" in str(e.value)

  @pytest.mark.parametrize("method", ("uniform", "selective_backprop", "rho_loss"))
  def test_shuffled_methods_accept_it(self, method):
    config = default_config()
    config.epoch_plan, config.prioritization = "bijection", method
    config.holdout.fraction = 0.1  # rho_loss's irreducible-loss model trains on it
    validate(config)


class TestResume:
  """A run resumes with the plan it started with (`runs.directory`'s same-config rule)."""

  @staticmethod
  def saved(tmp_path, config, drop_plan=False):
    saved = config.to_dict()
    if drop_plan:  # a run directory from before the field existed
      del saved["epoch_plan"]
    (tmp_path / "config.json").write_text(json.dumps(saved, default=list))
    return tmp_path

  def test_another_plan_is_refused_in_one_line(self, tmp_path):
    config = default_config()
    config.epoch_plan = "bijection"
    workdir = self.saved(tmp_path, config)
    assert RunDirectory.check(workdir, config)  # the same plan resumes
    config.epoch_plan = "permutation"
    with pytest.raises(RunDirectoryError, match="different config.*epoch_plan") as e:
      RunDirectory.check(workdir, config)
    assert "\n" not in str(e.value)

  def test_older_run_directories_resume_with_todays_plan(self, tmp_path):
    config = default_config()
    workdir = self.saved(tmp_path, config, drop_plan=True)
    assert RunDirectory.check(workdir, config)
    config.epoch_plan = "bijection"
    with pytest.raises(RunDirectoryError, match="epoch_plan: '<unset>' -> 'bijection'"):
      RunDirectory.check(workdir, config)
