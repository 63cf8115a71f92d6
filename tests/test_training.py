"""The training engine end to end on tiny data: loop, sharding, resume, bad inputs."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regularity_jax import data
from regularity_jax import metrics
from regularity_jax.data import batching
from regularity_jax.runs import RunDirectoryError
from regularity_jax.training import ConfigError
from regularity_jax.training import TrainingDiverged
from regularity_jax.training import train_and_evaluate
from tests import engine_fixtures

REPO = pathlib.Path(__file__).resolve().parents[1]
INT_DTYPES = (np.int32, np.int64, np.bool_)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("tiny_data")
  engine_fixtures.write_tiny_npz(path)
  return path


@pytest.fixture(scope="session")
def tiny_run(tiny_dir, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("runs") / "tiny"
  config = engine_fixtures.tiny_config(tiny_dir, num_epochs=6, plots=True,
                                       checkpoint_every=2, eval_every=2)
  return train_and_evaluate(config, workdir)


def assert_scores_equal(a, b, float_atol=1e-6):
  assert set(a) == set(b)
  for key in a:
    if a[key].dtype in INT_DTYPES or a[key].dtype.kind in "US":  # ints, bools, provenance
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    else:
      np.testing.assert_allclose(a[key], b[key], atol=float_atol, rtol=0, err_msg=key)


class TestTrainLoop:

  @pytest.mark.slow
  def test_run_directory_contents(self, tiny_run):
    w = tiny_run.workdir
    for name in ("config.json", "metrics.jsonl", "scores.npz", "scores_train.csv",
                 "scores_test.csv"):
      assert (w / name).is_file(), name
    for name in ("learning_curves", "forgetting_histogram", "margin_distributions", "data_map"):
      assert (w / "plots" / f"{name}.png").stat().st_size > 1000, name
    assert sorted(int(p.name) for p in (w / "checkpoints").iterdir() if p.name.isdigit()) == [4, 6]

  def test_metrics_jsonl(self, tiny_run):
    records = [json.loads(l) for l in (tiny_run.workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, 7))
    assert all(r["examples_presented"] == 96 for r in records)
    assert [("test_accuracy" in r) for r in records] == [False, True] * 3
    assert records[-1]["test_accuracy"] > 0.6  # the classes are separable
    assert records[-1]["train_loss"] < records[0]["train_loss"]

  def test_scores_layout(self, tiny_run):
    with np.load(tiny_run.workdir / "scores.npz") as z:
      scores = dict(z)
    np.testing.assert_array_equal(scores["train/example_id"], np.arange(96))
    np.testing.assert_array_equal(scores["test/example_id"], np.arange(48))
    for key in metrics.Tracker(1).summary_keys:
      assert scores[f"train/{key}"].shape == (96,), key
      assert scores[f"train/eval_{key}"].shape == (96,), key
      assert scores[f"test/{key}"].shape == (48,), key
    # Every training example is presented once per epoch; evaluated every 2 epochs.
    np.testing.assert_array_equal(scores["train/observations"], 6)
    np.testing.assert_array_equal(scores["train/eval_observations"], 3)
    np.testing.assert_array_equal(scores["test/observations"], 3)
    assert scores["train/cumulative_correct"].dtype == np.int32
    assert not scores["train/corrupted"].any()

  def test_csv_keyed_by_example_id(self, tiny_run):
    import pandas as pd
    frame = pd.read_csv(tiny_run.workdir / "scores_train.csv", index_col="example_id")
    assert len(frame) == 96
    np.testing.assert_array_equal(frame["cumulative_correct"].to_numpy(),
                                  tiny_run.scores["train/cumulative_correct"])

  def test_cbtl_counts_correct_presentations(self, tiny_run):
    # CBTL summed over examples = correct presentations summed over epochs.
    total = sum(round(r["train_accuracy"] * r["examples_presented"]) for r in tiny_run.metrics)
    assert tiny_run.scores["train/cumulative_correct"].sum() == total

  @pytest.mark.slow
  def test_corruption_recorded(self, tiny_dir, tmp_path):
    config = engine_fixtures.tiny_config(tiny_dir, num_epochs=1,
                                         **{"corruption.kind": "symmetric",
                                            "corruption.fraction": 0.25})
    scores = train_and_evaluate(config, tmp_path / "run").scores
    assert scores["train/corrupted"].sum() == 24
    changed = scores["train/label"] != scores["train/original_label"]
    np.testing.assert_array_equal(changed, scores["train/corrupted"])


class TestBatching:

  def test_every_active_example_once(self):
    positions, mask = batching.epoch_batches(jax.random.key(0), 10, 4)
    assert positions.shape == mask.shape == (3, 4)
    assert sorted(np.asarray(positions)[np.asarray(mask)].tolist()) == list(range(10))

  def test_active_subset_fixed_shape(self):
    active = jnp.zeros(10, bool).at[jnp.array([2, 5, 7])].set(True)
    positions, mask = batching.epoch_batches(jax.random.key(1), 10, 4, active)
    assert positions.shape == (3, 4)
    assert sorted(np.asarray(positions)[np.asarray(mask)].tolist()) == [2, 5, 7]
    # The 3 active rows fill the first batch; the other batches are all padding.
    np.testing.assert_array_equal(np.asarray(mask).sum(1), [3, 0, 0])

  def test_eval_batches_in_order(self):
    positions, mask = batching.eval_batches(5, 2)
    np.testing.assert_array_equal(np.asarray(positions)[np.asarray(mask)], np.arange(5))


def _main(*args, cwd=REPO, timeout=900):  # generous: CI's machine can be busy
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", "experiments.main", *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=timeout)


class TestResume:

  @pytest.mark.slow
  def test_rerun_resumes_and_matches_uninterrupted(self, tiny_dir, tmp_path):
    config = engine_fixtures.tiny_config(tiny_dir, num_epochs=5, checkpoint_every=2,
                                         keep_checkpoints=5)
    full = train_and_evaluate(config, tmp_path / "full")
    workdir = tmp_path / "resumed"
    # Simulate an interruption after epoch 2: run, then drop the later checkpoints.
    train_and_evaluate(config, workdir)
    import shutil
    for p in (workdir / "checkpoints").iterdir():
      if p.name.isdigit() and int(p.name) > 2:
        shutil.rmtree(p)
    (workdir / "scores.npz").unlink()
    resumed = train_and_evaluate(config, workdir)
    assert [r["epoch"] for r in resumed.metrics] == [1, 2, 3, 4, 5]
    assert_scores_equal(full.scores, resumed.scores)

  @pytest.mark.slow
  def test_max_wall_time_stops_then_resumes(self, tiny_dir, tmp_path):
    # A limit no epoch fits: the call stops after its first epoch, evaluated and checkpointed
    # although eval_every=2 skips epoch 1; the rerun (max_wall_time_s is resume-neutral) goes on.
    config = engine_fixtures.tiny_config(tiny_dir, num_epochs=3, eval_every=2,
                                         max_wall_time_s=1e-3)
    workdir = tmp_path / "w"
    stopped = train_and_evaluate(config, workdir)
    assert [r["epoch"] for r in stopped.metrics] == [1]
    assert "test_accuracy" in stopped.metrics[0]
    assert (workdir / "scores.npz").exists()
    config.max_wall_time_s = 0.0
    done = train_and_evaluate(config, workdir)
    assert [r["epoch"] for r in done.metrics] == [1, 2, 3]
    assert json.loads((workdir / "wall_time.json").read_text())["invocations"] == 2

  @pytest.mark.slow
  def test_sigkill_then_resume_equals_uninterrupted(self, tmp_path):
    """The command killed (deterministically, no timing) after 2 steps of epoch 4 of 6, with
    checkpoints at every epoch: rerunning the same command resumes from checkpoint 3 and ends
    where the uninterrupted run does."""
    args = ["--config=experiments/configs/quickstart.py", "--config.train_subset=800",
            "--config.test_subset=200", "--config.num_epochs=6", "--config.checkpoint_every=1",
            "--config.eval_every=3", "--config.plots=False", "--config.progress_bar=False"]
    reference = _main(*args, f"--workdir={tmp_path / 'reference'}")
    assert reference.returncode == 0, reference.stderr[-2000:]

    workdir = tmp_path / "killed"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", KILLED_IN_EPOCH_4, *args,
                           f"--workdir={workdir}"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (workdir / "scores.npz").exists()
    assert max(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == 3
    assert (workdir / "run.lock").exists()  # the killed run's: stale, taken over below
    killed = json.loads((workdir / "wall_time.json").read_text())  # counted to epoch 3
    assert killed["invocations"] == 1 and killed["seconds"] > 0

    resumed = _main(*args, f"--workdir={workdir}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with np.load(tmp_path / "reference" / "scores.npz") as a, np.load(workdir / "scores.npz") as b:
      assert_scores_equal(dict(a), dict(b), float_atol=1e-6)
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["epoch"] for l in lines] == list(range(1, 7))
    wall = json.loads((workdir / "wall_time.json").read_text())
    assert wall["invocations"] == 2 and wall["seconds"] > killed["seconds"]


# `python -m experiments.main ARGS`, killed by SIGKILL after 2 steps of epoch 4.
KILLED_IN_EPOCH_4 = engine_fixtures.killed_in_epoch("DeviceInput", 4, 2, """
from absl import app
from experiments import cli, main
sys.argv = ["experiments.main", *sys.argv[1:]]
app.run(main.main, flags_parser=cli.parse_flags)
""")


class TestBadInput:
  """Every user error is one line naming the problem and the fix; nothing is deleted."""

  @pytest.mark.slow
  def test_cli_unknown_dataset_one_line(self, tmp_path):
    out = _main("--config=experiments/configs/quickstart.py", "--config.dataset=mnits",
                f"--workdir={tmp_path / 'w'}")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("error: unknown dataset 'mnits'"), out.stderr[-500:]
    assert "--config.dataset" in lines[-1]
    assert "Traceback" not in out.stderr

  @pytest.mark.slow
  def test_cli_missing_files_one_line(self, tmp_path):
    out = _main("--config=experiments/configs/mnist_toneva.py:smoke",
                f"--config.data_dir={tmp_path / 'nowhere'}", f"--workdir={tmp_path / 'w'}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "does not exist" in out.stderr and "--config.data_dir" in out.stderr

  @pytest.mark.parametrize("field,value,match", [
      ("model", "resnet50", "unknown model 'resnet50'.*--config.model"),
      ("optimizer", "sdg", "unknown optimizer 'sdg'.*--config.optimizer"),
      ("corruption.kind", "noise", "unknown corruption.kind 'noise'"),
      ("num_epochs", 0, "num_epochs=0 must be a positive integer"),
      ("max_wall_time_s", -1.0, "max_wall_time_s=-1.0 must be a finite number >= 0"),
  ])
  def test_bad_config_fields(self, tiny_dir, tmp_path, field, value, match):
    config = engine_fixtures.tiny_config(tiny_dir, **{field: value})
    with pytest.raises(ConfigError, match=match):
      train_and_evaluate(config, tmp_path / "w")

  def test_bad_model_kwarg(self, tiny_dir, tmp_path):
    config = engine_fixtures.tiny_config(tiny_dir)
    config.model_kwargs.hiden = (3,)
    with pytest.raises(ConfigError, match="hiden"):
      train_and_evaluate(config, tmp_path / "w")

  def test_labels_out_of_range(self, tmp_path):
    # 10 declared classes: labels 7..10 reach past them
    engine_fixtures.write_tiny_npz(tmp_path / "d", labels_offset=7,
                                   class_names=[str(c) for c in range(10)])
    config = engine_fixtures.tiny_config(tmp_path / "d")
    with pytest.raises(data.DataError, match="label"):
      train_and_evaluate(config, tmp_path / "w")

  def test_nan_inputs(self, tmp_path):
    engine_fixtures.write_tiny_npz(tmp_path / "d", nan=True)
    config = engine_fixtures.tiny_config(tmp_path / "d")
    with pytest.raises(data.DataError, match="(?i)finite|nan"):
      train_and_evaluate(config, tmp_path / "w")

  @pytest.mark.slow
  def test_different_config_refused_nothing_deleted(self, tiny_dir, tmp_path):
    workdir = tmp_path / "w"
    train_and_evaluate(engine_fixtures.tiny_config(tiny_dir, num_epochs=1), workdir)
    before = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*"))
    with pytest.raises(RunDirectoryError, match="different config.*learning_rate"):
      train_and_evaluate(engine_fixtures.tiny_config(tiny_dir, num_epochs=1, learning_rate=0.5),
                         workdir)
    assert sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*")) == before

  def test_foreign_directory_refused(self, tiny_dir, tmp_path):
    workdir = tmp_path / "w"
    workdir.mkdir()
    (workdir / "thesis.tex").write_text("precious")
    with pytest.raises(RunDirectoryError, match="not empty and holds no config.json"):
      train_and_evaluate(engine_fixtures.tiny_config(tiny_dir), workdir)
    assert (workdir / "thesis.tex").read_text() == "precious"

  @pytest.mark.slow
  def test_nan_loss_stops_and_keeps_last_checkpoint(self, tiny_dir, tmp_path):
    # The learning rate jumps by 1e12 after epoch 2: the loss diverges in epoch 3.
    config = engine_fixtures.tiny_config(tiny_dir, num_epochs=5, checkpoint_every=1,
                                         schedule="multistep", lr_milestones=(2,), lr_gamma=1e12)
    workdir = tmp_path / "w"
    with pytest.raises(TrainingDiverged, match="epoch 3.*last good checkpoint \\(epoch 2\\)"):
      train_and_evaluate(config, workdir)
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()
                  if p.name.isdigit()) == [1, 2]


@pytest.mark.slow
def test_scanned_epoch_equals_stepped_epoch(tiny_dir, tmp_path):
  """scan_epoch runs the same steps as one device program: identical statistics."""
  runs, traces = [], []
  for scan in (False, True):
    with engine_fixtures.count_traces() as counts:
      runs.append(train_and_evaluate(
          engine_fixtures.tiny_config(tiny_dir, num_epochs=3, scan_epoch=scan),
          tmp_path / f"scan{scan}"))
    traces.append(counts)
  assert_scores_equal(runs[0].scores, runs[1].scores, float_atol=1e-5)
  assert traces[1]["scanned_epoch"] == 1 and "epoch_step" not in traces[1]
  assert traces[0]["epoch_step"] == 1 and "scanned_epoch" not in traces[0]
