"""Stream mode (`--config.input_pipeline=stream`, training/inputs.py) against device mode.

Done-when of issue 17: stream equals device on the mnist_toneva smoke (integers identical,
floats within 1e-6); a SIGKILL inside a stream epoch resumes to the uninterrupted run; every
feature works in stream mode (or is refused in one line); the training split is not on the
device. Four-device stream runs: tests/multidevice_cases.py (stream_four_devices_match_device).
"""

import gc
import os
import pathlib
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from regularity_jax.data import streaming
from regularity_jax.training import ConfigError
from regularity_jax.training import inputs
from regularity_jax.training import loop
from regularity_jax.training import train_and_evaluate
from tests import engine_fixtures

REPO = pathlib.Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "data" / "mnist"
TIMING_KEYS = ("train_time_s", "eval_time_s")


def assert_runs_equal(a, b, float_atol=1e-6):
  """Integer and boolean scores identical, floats within `float_atol`; metrics.jsonl alike."""
  assert set(a.scores) == set(b.scores)
  for key, x in a.scores.items():
    x, y = np.asarray(x), np.asarray(b.scores[key])
    if x.dtype.kind in "fc":
      np.testing.assert_allclose(x, y, atol=float_atol, rtol=0, err_msg=key)
    else:
      np.testing.assert_array_equal(x, y, err_msg=key)
  assert len(a.metrics) == len(b.metrics)
  for ra, rb in zip(a.metrics, b.metrics):
    assert set(ra) == set(rb)
    for key in set(ra) - set(TIMING_KEYS):
      if isinstance(ra[key], float):
        assert abs(ra[key] - rb[key]) <= float_atol, (ra["epoch"], key, ra[key], rb[key])
      else:
        np.testing.assert_allclose(ra[key], rb[key], atol=float_atol, rtol=0,
                                   err_msg=f"epoch {ra['epoch']} {key}")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("stream_data")
  engine_fixtures.write_tiny_npz(path)
  return path


def both_modes(config_of, tmp_path):
  """{mode: RunResult} of the same config in device and stream mode."""
  return {mode: train_and_evaluate(config_of(input_pipeline=mode), tmp_path / mode)
          for mode in ("device", "stream")}


@pytest.mark.slow
@pytest.mark.skipif(not MNIST.exists(), reason="needs ../shared/data/mnist")
def test_mnist_toneva_smoke_stream_equals_device(tmp_path):
  from experiments.configs import mnist_toneva  # pylint: disable=g-import-not-at-top

  def config_of(**overrides):
    c = mnist_toneva.get_config("smoke")
    c.data_dir, c.progress_bar, c.plots = str(MNIST), False, False
    c.update(overrides)
    return c

  runs = both_modes(config_of, tmp_path)
  assert_runs_equal(runs["device"], runs["stream"])
  assert runs["stream"].final["epoch"] == 3
  assert (runs["stream"].scores["train/forgetting_events"] > 0).any()


# Every feature of the engine in stream mode (issue 17 item 3; README "Streaming input").
FEATURES = {
    "uniform": {},
    "augment": {"augment": True, "crop_padding": 2},
    "num_seeds": {"num_seeds": 2},
    "selective_backprop": {"prioritization": "selective_backprop"},
    "importance": {"prioritization": "importance"},
    "infobatch": {"prioritization": "infobatch"},
    "noise_aware": {"prioritization": "noise_aware", "prioritization_options.noise_warmup": 1},
    "rho_loss": {"prioritization": "rho_loss", "holdout.fraction": 0.25,
                 "prioritization_options.rho_il_epochs": 1,
                 "prioritization_options.rho_candidates": 2},
    "pruning": {"pruning.fraction_kept": 0.5, "pruning.score": "random"},
    "weighting": {"weighting.scheme": "easy_first", "weighting.start_epoch": 1},
    "reduction": {"reduction.enabled": True, "reduction.threshold": 0.0,
                  "reduction.fraction": 0.5},
    "turnover": {"turnover.enabled": True, "turnover.influence_targets": "test"},
    "holdout": {"holdout.folds": 3, "holdout.fold": 1},
    "aum_threshold": {"aum_threshold.set": 1},
    "corruption": {"corruption.kind": "symmetric", "corruption.fraction": 0.25},
    "schedule_examples": {"schedule_clock": "examples", "schedule": "cosine"},
}


# The features that combine run together, as few pairs of runs as the engine allows (each
# prioritization method needs a run of its own, rho_loss's holdout excludes the folds, num_seeds
# excludes turn-over's influence targets); every feature of FEATURES is in exactly one group.
# The fast tier streams one of them (pruning: a plan with masked columns), the slow tier all.
GROUPS = {
    "pruning": ("uniform", "pruning"),
    "sb_weighting_holdout_corruption_augment": (
        "selective_backprop", "weighting", "holdout", "corruption", "augment",
        "schedule_examples"),
    "importance_seeds_aum_threshold": ("importance", "num_seeds", "aum_threshold"),
    "infobatch_turnover_reduction": ("infobatch", "turnover", "reduction"),
    "noise_aware": ("noise_aware",),
    "rho_loss": ("rho_loss",),
}


def test_groups_hold_every_feature_once():
  grouped = [f for group in GROUPS.values() for f in group]
  assert sorted(grouped) == sorted(FEATURES)


@pytest.mark.parametrize("group", [
    g if g == "pruning" else pytest.param(g, marks=pytest.mark.slow) for g in GROUPS])
def test_features_stream_equals_device(group, tiny_dir, tmp_path):
  overrides = {k: v for feature in GROUPS[group] for k, v in FEATURES[feature].items()}

  def config_of(**more):
    return engine_fixtures.tiny_config(tiny_dir, num_epochs=2, **overrides, **more)

  runs = both_modes(config_of, tmp_path)
  assert_runs_equal(runs["device"], runs["stream"])


@pytest.fixture(scope="session")
def previous_scores(tiny_dir, tmp_path_factory):
  """A finished run's scores.npz: what pruning and weighting read with a scores_path."""
  workdir = tmp_path_factory.mktemp("previous") / "run"
  train_and_evaluate(engine_fixtures.tiny_config(tiny_dir, num_epochs=2), workdir)
  return workdir / "scores.npz"


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    {"pruning.fraction_kept": 0.5, "pruning.score": "forgetting"},
    {"weighting.scheme": "hard_first", "weighting.score": "el2n"},
], ids=["pruning_by_score", "weighting_from_scores"])
def test_scores_path_features_stream_equals_device(overrides, previous_scores, tiny_dir,
                                                    tmp_path):
  field = next(k for k in overrides).split(".")[0]

  def config_of(**more):
    return engine_fixtures.tiny_config(tiny_dir, num_epochs=2, **overrides, **more,
                                       **{f"{field}.scores_path": str(previous_scores)})

  runs = both_modes(config_of, tmp_path)
  assert_runs_equal(runs["device"], runs["stream"])


class TestRefused:
  """What stream mode cannot do is refused in one line naming the fix."""

  @pytest.mark.parametrize("overrides,match", [
      ({"scan_epoch": True}, "scan_epoch=True .* set --config.scan_epoch=False"),
      ({"stream.threads": 0}, "stream.threads=0 must be >= 1"),
      ({"stream.prefetch": 0}, "stream.prefetch=0 must be >= 1"),
  ])
  def test_one_line(self, overrides, match, tiny_dir, tmp_path):
    config = engine_fixtures.tiny_config(tiny_dir, input_pipeline="stream", **overrides)
    with pytest.raises(ConfigError, match=match) as error:
      train_and_evaluate(config, tmp_path / "run")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()

  def test_unknown_pipeline(self, tiny_dir, tmp_path):
    config = engine_fixtures.tiny_config(tiny_dir, input_pipeline="disk")
    with pytest.raises(ConfigError, match="unknown input_pipeline 'disk'.*'device', 'stream'"):
      train_and_evaluate(config, tmp_path / "run")

  @pytest.mark.slow
  def test_scan_epoch_still_works_on_device(self, tiny_dir, tmp_path):
    config = engine_fixtures.tiny_config(tiny_dir, num_epochs=1, scan_epoch=True)
    assert train_and_evaluate(config, tmp_path / "run").final["epoch"] == 1


# SIGKILL after 2 rows of epoch 3 of a tiny_config run: argv data_dir, workdir, overrides.
KILL_CHILD = engine_fixtures.killed_in_epoch("StreamInput", 3, 2, """
from tests import engine_fixtures
from regularity_jax.training import train_and_evaluate
train_and_evaluate(engine_fixtures.tiny_config(sys.argv[1], **eval(sys.argv[3])), sys.argv[2])
""")


class TestResume:

  @pytest.mark.slow
  def test_sigkill_inside_a_stream_epoch_then_resume_equals_uninterrupted(self, tiny_dir,
                                                                          tmp_path, monkeypatch):
    """Killed (deterministically, no timing) after 2 rows of epoch 3 of 4, checkpoints at every
    epoch: the rerun resumes at row 0 of epoch 3 and ends where the uninterrupted run does."""
    overrides = {"num_epochs": 4, "checkpoint_every": 1, "augment": True, "crop_padding": 2,
                 "prioritization": "selective_backprop", "input_pipeline": "stream"}
    config = engine_fixtures.tiny_config(tiny_dir, **overrides)
    reference = train_and_evaluate(config, tmp_path / "reference")
    workdir = tmp_path / "killed"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", KILL_CHILD, str(tiny_dir), str(workdir),
                           repr(overrides)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [
        "1", "2"]
    assert not (workdir / "scores.npz").exists()

    epochs_streamed = []
    original = inputs.StreamInput.train_rows

    def counted(self, setup, plan, num_rows):
      epochs_streamed.append(int(np.ravel(jax.device_get(plan["num_active"]))[0]))
      return original(self, setup, plan, num_rows)

    monkeypatch.setattr(inputs.StreamInput, "train_rows", counted)
    resumed = train_and_evaluate(config, workdir)
    assert len(epochs_streamed) == 2  # epochs 3 and 4 only: resumed from checkpoint 2
    assert [r["epoch"] for r in resumed.metrics] == [1, 2, 3, 4]
    assert_runs_equal(reference, resumed, float_atol=0.0)


  @pytest.mark.slow
  def test_a_device_run_resumes_in_stream_mode(self, tiny_dir, tmp_path):
    """input_pipeline changes where batches come from, not the results: resume-neutral."""
    from regularity_jax.runs import RunDirectory  # pylint: disable=g-import-not-at-top
    config = engine_fixtures.tiny_config(tiny_dir, num_epochs=1)
    train_and_evaluate(config, tmp_path / "run")
    stream = engine_fixtures.tiny_config(tiny_dir, num_epochs=1, input_pipeline="stream",
                                         **{"stream.threads": 3})
    assert RunDirectory.check(tmp_path / "run", stream)


class TestMemory:

  @pytest.mark.slow
  @pytest.mark.parametrize("mode", ["device", "stream"])
  def test_training_split_on_the_device_only_in_device_mode(self, mode, tmp_path, monkeypatch):
    """During every epoch, no device array holds the training split's images (or any
    [n_train, ...] block of examples) in stream mode; device mode holds it (the control)."""
    n_train, shape = 104, (6, 6, 1)  # a size no other test's arrays have
    engine_fixtures.write_tiny_npz(tmp_path / "data", n_train=n_train, shape=shape)
    config = engine_fixtures.tiny_config(tmp_path / "data", num_epochs=2, input_pipeline=mode)
    seen = []
    original = loop.train_epoch

    def probed(setup, *args, **kwargs):
      out = original(setup, *args, **kwargs)
      gc.collect()
      seen.append({"split": set(setup.train_split), "test_split": set(setup.test_split),
                   "examples": max((int(np.prod(a.shape[:-len(shape)]))
                                    for a in jax.live_arrays()
                                    if a.ndim > len(shape) and a.shape[-len(shape):] == shape),
                                   default=0)})
      return out

    monkeypatch.setattr(loop, "train_epoch", probed)
    train_and_evaluate(config, tmp_path / "run")
    assert len(seen) == 2
    for probe in seen:
      if mode == "stream":
        assert probe["split"] == probe["test_split"] == {"weight"}
        # At most a few rows of 16 (train) or 32 (eval) examples in flight, never the split.
        assert probe["examples"] < n_train
      else:
        assert probe["split"] == {"image", "label", "id", "weight"}
        assert probe["examples"] >= n_train


class TestSource:

  def test_plan_rows_in_plan_order_ids_kept(self, tiny_dir):
    from regularity_jax import data  # pylint: disable=g-import-not-at-top
    dataset = data.load_dataset("mnist", tiny_dir)
    source = streaming.SplitSource(dataset.train)
    positions = np.random.default_rng(0).integers(0, len(source), (2, 5, 8))  # [K, R, W]
    rows = list(streaming.plan_dataset(source, positions, num_rows=4))
    assert len(rows) == 4
    for r, row in enumerate(rows):
      np.testing.assert_array_equal(row["id"], dataset.train.ids[positions[:, r]])
      np.testing.assert_array_equal(row["image"], dataset.train.images[positions[:, r]])
      assert row["image"].shape == (2, 8) + dataset.example_shape
    assert source[3]["id"] == dataset.train.ids[3]

  def test_pipelines(self):
    assert inputs.PIPELINES == ("device", "stream")
