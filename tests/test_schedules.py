"""Learning-rate schedules follow the epoch: a pruned or prioritized run has the full run's
learning rate at the same epoch (docs/definitions.md, "Learning-rate schedules follow epochs")."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from regularity_jax.training import default_config
from regularity_jax.training import optimizers
from regularity_jax.training import train_and_evaluate
from tests import engine_fixtures


def _config(**fields):
  c = default_config()
  c.learning_rate = 0.05
  for k, v in fields.items():
    c[k] = v
  return c


def _positions(clock, steps):
  out = []
  for _ in range(steps):
    out.append(float(clock.position))
    clock = clock.advance(jnp.int32(1))
  return out


class TestClock:

  def test_full_run_position_is_the_step_count(self):
    # 30 steps per epoch: at every step of epoch 4 the position is the optimizer step itself,
    # so the full run reads optax's schedule exactly where optax would.
    schedule = optimizers.make_schedule(_config(schedule="cosine", num_epochs=6), 30)
    positions = _positions(optimizers.epoch_clock(4, 30, 30), 30)
    assert positions == list(range(120, 150))
    reference = optax.cosine_decay_schedule(0.05, 180)
    np.testing.assert_array_equal([schedule(p) for p in positions],
                                  [reference(k) for k in range(120, 150)])

  @pytest.mark.parametrize("steps_this_epoch", [15, 7, 1])
  def test_fewer_steps_cover_the_same_epoch(self, steps_this_epoch):
    positions = _positions(optimizers.epoch_clock(2, steps_this_epoch, 30), steps_this_epoch)
    assert positions[0] == 60.0
    np.testing.assert_allclose(positions, 60 + np.arange(steps_this_epoch) * 30 / steps_this_epoch,
                               rtol=1e-6)

  def test_multistep_drops_at_the_epoch_in_every_run(self):
    schedule = optimizers.make_schedule(_config(schedule="multistep", lr_milestones=(3,),
                                                lr_gamma=0.1, num_epochs=6), 30)
    for steps in (30, 10, 3):
      last_of_epoch_2 = _positions(optimizers.epoch_clock(2, steps, 30), steps)[-1]
      first_of_epoch_3 = float(optimizers.epoch_clock(3, steps, 30).position)
      assert float(schedule(last_of_epoch_2)) == pytest.approx(0.05)
      assert float(schedule(first_of_epoch_3)) == pytest.approx(0.005)

  def test_examples_clock(self):
    clock = optimizers.init_clock(_config(schedule_clock="examples"), 30, 960)
    clock = clock.advance(jnp.int32(32)).advance(jnp.int32(16))
    assert float(clock.position) == pytest.approx(48 * 30 / 960)

  def test_unit_rate_optimizer_times_the_schedule_is_optax(self):
    # sgd(1) scaled by lr equals optax's sgd(lr) (same arithmetic, bit for bit).
    grads = {"w": jnp.array([0.3, -1.7, 2.5e-3])}
    params = {"w": jnp.ones(3)}
    config = _config(momentum=0.9, weight_decay=5e-4)
    ours = optimizers.make_optimizer(config)
    theirs = optax.chain(optax.add_decayed_weights(5e-4), optax.sgd(0.05, momentum=0.9))
    s1, s2 = ours.init(params), theirs.init(params)
    for _ in range(3):
      u1, s1 = ours.update(grads, s1, params)
      u2, s2 = theirs.update(grads, s2, params)
      np.testing.assert_array_equal(optimizers.scale_updates(u1, jnp.float32(0.05))["w"], u2["w"])


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("tiny_sched")
  engine_fixtures.write_tiny_npz(path)
  return path


@pytest.mark.slow
def test_pruned_and_prioritized_runs_follow_the_full_runs_learning_rate(tiny_dir, tmp_path):
  common = dict(num_epochs=6, schedule="cosine", warmup_epochs=1.0)
  full = train_and_evaluate(engine_fixtures.tiny_config(tiny_dir, **common), tmp_path / "full")
  pruned = train_and_evaluate(engine_fixtures.tiny_config(
      tiny_dir, **common, **{"pruning.fraction_kept": 0.5, "pruning.score": "random"}),
      tmp_path / "pruned")
  infobatch = train_and_evaluate(engine_fixtures.tiny_config(
      tiny_dir, **common, prioritization="infobatch"), tmp_path / "infobatch")
  lr = lambda run: [r["learning_rate"] for r in run.metrics]
  assert [r["step"] for r in pruned.metrics][-1] < [r["step"] for r in full.metrics][-1]
  assert lr(pruned) == lr(full) and lr(infobatch) == lr(full)
  assert len(set(lr(full))) == 6  # the schedule really moves
  # The examples clock, by contrast, runs the pruned run's schedule at half speed: after 2 of
  # its epochs it has seen as many examples as the full run after 1.
  slow = train_and_evaluate(engine_fixtures.tiny_config(
      tiny_dir, **common, schedule_clock="examples",
      **{"pruning.fraction_kept": 0.5, "pruning.score": "random"}), tmp_path / "examples")
  assert lr(slow)[2] == lr(full)[1] and lr(slow)[4] == lr(full)[2]
  assert lr(slow)[3] > lr(full)[3]
