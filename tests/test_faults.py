"""The fault suite: every mistake is one line (exit 2), nothing is lost, resume stays exact.

Each fault of "Every door, part 2" and the test that covers it (F = this file):

| fault                                                        | test                                      |
|--------------------------------------------------------------|-------------------------------------------|
| unknown / misspelled config field                            | F TestCommandLine (unknown_field)          |
| misspelled --config path                                     | F TestCommandLine (config_path)            |
| config file argument its get_config refuses                  | F TestCommandLine (config_argument)        |
| scores_path not an npz, truncated, lacking keys              | test_scores_file TestChecked (unreadable, no provenance) |
| data npz cut in half; random bytes as npz                    | F TestDataFiles                            |
| Ctrl-C                                                       | F TestInterrupt                            |
| full disk; read-only workdir                                 | F TestDisk                                 |
| truncated / bit-flipped newest checkpoint; empty folder      | F TestCheckpoints (parts: all 3; a run: truncated) |
| checkpoint of an older state format                          | F TestCheckpoints.test_other_state_format  |
| corrupt config.json                                          | F TestRunFiles.test_corrupt_config_json    |
| metrics.jsonl whose last line was cut; a damaged middle line | F TestRunFiles                             |
| truncated image-decode cache                                 | F TestDataFiles.test_damaged_image_cache   |
| model_kwargs.hidden=(0,), margins.quantiles=0,               | F TestValidation                           |
| pruning.num_bins=0, sb_history=0, augment on 1-D data,       |                                           |
| learning_rate nan/inf, momentum 1.5, temperature 0           |                                           |
| divergence message (no checkpoint yet; the real suspects)    | F TestDivergence; test_training (epoch 2)  |
| CIFAR-10 JPEG archive as mnist; single-class folder          | F TestDataFiles; test_data_loaders         |
| a class with no training images; a pixel of 3e38             | F TestDataFiles (warnings)                 |
| config.json written before data and score checks             | F TestOwnership; test_scores_file          |
| two live runs on one workdir; a stale lock of a killed run   | F TestLock; test_training (SIGKILL resume) |
| resume after SIGKILL bit-identical                           | test_training TestResume                   |

And of "Every door, part 4" (issue 36):

| fault                                                        | test                                      |
|--------------------------------------------------------------|-------------------------------------------|
| SIGTERM: no message, run.lock left; stops at a step boundary,| F TestSigterm (handler, messages; a run:  |
| saves a mid-epoch checkpoint there (or a whole epoch's at an | at epoch 2's first step, after 3 of its 6 |
| epoch's end), exit 143, the rerun resumes from that step     | steps (device and stream), after an epoch)|
| bit-identically                                              |                                           |
| SIGTERM with no step boundary within sigterm_grace_s         | F TestSigterm.test_no_step_boundary_...   |
| Ctrl-C after the last epoch "before training started"        | F TestSigterm.test_ctrl_c_after_the_last_epoch_... |
| run.lock: host, pid, job id, heartbeat; requeue / stale      | F TestLockHolders                          |
| heartbeat taken over; else host, pid, age, take_over_lock    |                                           |
| --workdir=~/runs/x (a literal ./~), $VARS, relative paths    | F TestPaths (expanded, absolute)           |
| ~ and $VARS in data_dir, scores paths, partner               | F TestPaths.test_config_path_fields_...    |
| workdir: parent a file, dangling link, 256-byte name, non-UTF-8 | F TestPaths (parts; before Setup.create) |
| seed 2^32 / 2^40 silently seed 0                             | F TestConfigFaults                         |
| holdout / aum_threshold / pruning.seed = -1; lr_gamma < 0;   | F TestConfigFaults                         |
| duplicate lr_milestones; dataset=MNIST without did-you-mean  |                                           |
| get_config returning a dict / bare ConfigDict; no get_config | F TestConfigFaults                         |
| train_subset out of range suggesting "None"                  | F TestConfigFaults                         |
| report: cut metrics.jsonl, empty wall_time.json, another     | F TestReportCommand                        |
| tool's directory, two at once                                |                                           |
| stdout a closed pipe (exit 1), stderr closed (tqdm dies)     | F TestReportCommand (parts; a command: slow) |
| relative paths recorded only as typed in config.json         | F TestPaths (relative_paths_...; resume)  |
| uint8 vs float scaling, 16-bit PNGs, nested folders, TFDS    | test_your_data TestDataFaults (its table),|
| damaged build / offline download cache                       | test_tfds                                 |

And of "Every door, part 3" (issue 35):

| fault                                                        | test                                      |
|--------------------------------------------------------------|-------------------------------------------|
| 1. data swapped (same sizes) between a kill and the rerun, or| F TestDataChanged.test_a_rerun_on_other_  |
| under a finished run; a shape change blamed on "another      | data_is_one_line (pixels, labels, shape,  |
| version"; runs without a record never refused                | class names); ..._without_a_record_...    |
| 2. difficulty weighting's train/weight rewritten as 1.0      | F TestFinishedRuns.test_difficulty_       |
|                                                              | weights_survive_a_rerun_of_the_final_files|
| 3. checkpoints deleted, rerun: silent retrain, metrics.jsonl | F TestFinishedRuns (checkpoints_gone;     |
| emptied; intact rerun writes nothing; missing files equal    | intact; missing files; report and plots)  |
| 4. experiments.report on other data of the same sizes        | F TestDataChanged.test_the_report_command_|
|                                                              | on_other_labels...; ..._imported_again    |
| 5. wall_time.json leaves out killed invocations              | F TestWallTime; test_training (SIGKILL)   |
| 6. a finished run cannot be extended to more epochs          | F TestExtension (constant 4 -> 6 equals a |
|                                                              | 6-epoch run; cosine refused; the parts)   |
"""

import errno
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from experiments import cli
from regularity_jax import data
from regularity_jax import entrypoints
from regularity_jax.runs import Checkpointer
from regularity_jax.runs import CheckpointFormatError
from regularity_jax.runs import RunDirectory
from regularity_jax.runs import RunDirectoryError
from regularity_jax.training import ConfigError
from regularity_jax.training import Interrupted
from regularity_jax.training import TrainingDiverged
from regularity_jax.training import train_and_evaluate
from regularity_jax.training import epoch as epoch_lib
from tests import engine_fixtures

REPO = pathlib.Path(__file__).parent.parent
SHARED = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
  directory = tmp_path_factory.mktemp("faults_data")
  engine_fixtures.write_tiny_npz(directory)
  return directory


def config_of(tiny_dir, **overrides):
  return engine_fixtures.tiny_config(tiny_dir, **{"num_epochs": 3, "keep_checkpoints": 3,
                                                  **overrides})


@pytest.fixture(scope="session")
def reference(tiny_dir, tmp_path_factory):
  """An uninterrupted 3-epoch run: what every resumed run must equal."""
  workdir = tmp_path_factory.mktemp("faults_reference") / "run"
  return train_and_evaluate(config_of(tiny_dir), workdir)


def finished_copy(reference, tmp_path) -> pathlib.Path:
  workdir = tmp_path / "run"
  shutil.copytree(reference.workdir, workdir)
  return workdir


def without_times(records):
  return [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in records]


def assert_same_run(a, b):
  assert without_times(a.metrics) == without_times(b.metrics)
  assert sorted(a.scores) == sorted(b.scores)
  for key in a.scores:
    np.testing.assert_array_equal(a.scores[key], b.scores[key], err_msg=key)


def one_line_exit(fn, *args, code=2):
  """Runs fn through the entry points' error handling; returns the one stderr line."""
  with pytest.raises(SystemExit) as e:
    entrypoints.run(fn, *args)
  assert e.value.code == code
  return e


def stderr_line(capsys) -> str:
  """The one error line (warnings may precede it); no traceback."""
  err = capsys.readouterr().err
  assert "Traceback" not in err
  lines = [l for l in err.splitlines() if l.startswith("error: ")]
  assert len(lines) == 1, err
  return lines[0]


def files_of(workdir):
  return sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*"))


class TestCommandLine:

  def _main(self, *args):
    return subprocess.run([sys.executable, "-m", "experiments.main", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)

  @pytest.mark.parametrize("case,args,fragments", [
      ("unknown_field", ["--config=experiments/configs/quickstart.py",
                         "--config.num_epochs_typo=3"],
       ["unknown config field 'num_epochs_typo'", 'did you mean "num_epochs"']),
      ("config_path", ["--config=experiments/configs/quickstrt.py"],
       ["cannot load the config file 'experiments/configs/quickstrt.py' (no such file)",
        "did you mean experiments/configs/quickstart.py"]),
      ("config_argument", ["--config=experiments/configs/quickstart.py:nosuch"],
       ["unknown config argument 'nosuch'", "--config=PATH[:ARG]"]),
  ])
  def test_one_line_exit_2_and_no_workdir(self, tmp_path, case, args, fragments):
    del case
    out = self._main(*args, f"--workdir={tmp_path / 'w'}")
    lines = [l for l in out.stderr.splitlines() if l.strip()]
    assert out.returncode == 2 and len(lines) == 1, out.stderr[-2000:]
    for fragment in fragments:
      assert fragment in lines[0], lines[0]
    assert not (tmp_path / "w").exists()

  def test_explain_a_bad_value(self):
    from absl import flags
    message = cli.explain(flags.IllegalFlagValueError("flag --config.num_epochs=abc: invalid"),
                          ["--config=x.py"])
    assert "\n" not in message and "--config.num_epochs=abc" in message


class TestDataFiles:

  def test_npz_cut_in_half(self, tiny_dir, tmp_path):
    raw = (tiny_dir / "tiny.npz").read_bytes()
    (tmp_path / "tiny.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.DataError) as e:
      data.load_dataset("mnist", tmp_path)
    assert "\n" not in str(e.value) and "truncated" in str(e.value)

  def test_random_bytes_are_not_called_pickled(self, tmp_path):
    (tmp_path / "tiny.npz").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(data.DataError) as e:
      data.load_dataset("mnist", tmp_path)
    assert "is not an .npz file" in str(e.value) and "pickle" not in str(e.value)

  def test_damaged_image_cache_is_rebuilt(self, tmp_path, capsys):
    from tests.test_data_loaders import image_tree, write_tar, png_bytes
    tree = {f"t/{k}": png_bytes(v[..., 0], "PNG")
            for k, v in image_tree(np.random.default_rng(0), [str(i) for i in range(10)], 1,
                                   shape=(28, 28, 1)).items()}
    (tmp_path / "data").mkdir()
    write_tar(tmp_path / "data" / "digits.tar.gz", tree)
    cache = tmp_path / "cache"
    first = data.load_dataset("mnist", tmp_path / "data", cache_dir=cache)
    files = sorted(cache.glob("*.npz"))
    assert files
    for f in files:
      f.write_bytes(f.read_bytes()[:50])
    capsys.readouterr()
    again = data.load_dataset("mnist", tmp_path / "data", cache_dir=cache)
    err = capsys.readouterr().err
    assert "is damaged" in err and any(str(f) in err for f in files), err
    np.testing.assert_array_equal(first.train.images, again.train.images)
    data.load_dataset("mnist", tmp_path / "data", cache_dir=cache)  # rewritten: reads clean
    assert "damaged" not in capsys.readouterr().err

  @pytest.mark.slow
  @pytest.mark.skipif(not (SHARED / "cifar10_jpeg_q75").exists(), reason="the JPEG CIFAR-10 copy is in ../shared/data, which only this project's machines have")
  def test_the_cifar10_jpeg_archive_is_not_mnist(self):
    with pytest.raises(data.DataError) as e:
      data.load_dataset("mnist", SHARED / "cifar10_jpeg_q75", train_subset=20, test_subset=10)
    assert "32x32 but mnist's are 28x28" in str(e.value)

  def test_a_class_without_training_examples_warns(self, tmp_path, capsys):
    engine_fixtures.write_tiny_npz(tmp_path, num_classes=4)
    data.load_dataset("mnist", tmp_path)  # 10 classes named, 4 present
    err = capsys.readouterr().err
    assert "warning: 6 of mnist's 10 classes have no training example" in err

  def test_an_absurd_pixel_warns(self, tmp_path, capsys):
    x = np.random.default_rng(0).random((20, 4, 4)).astype(np.float32)
    x[3, 1, 1] = 3e38
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=np.arange(20) % 10,
             x_test=x[:10], y_test=np.arange(10))
    data.load_dataset("mnist", tmp_path)
    err = capsys.readouterr().err
    assert "magnitude up to 3e+38" in err and "first at row 3" in err


class TestValidation:
  """Fields that failed after an epoch, or silently: refused before anything is written."""

  @pytest.mark.parametrize("overrides,match", [
      ({"model_kwargs.hidden": (0,)}, "model_kwargs.hidden=\\(0,\\) must be a non-empty tuple"),
      ({"margins.quantiles": 0}, "margins.quantiles=0 must be >= 1"),
      ({"pruning.num_bins": 0, "pruning.score": "random", "pruning.fraction_kept": 0.5,
        "pruning.rule": "ccs"}, "pruning.num_bins=0 must be >= 1"),
      ({"prioritization": "selective_backprop", "prioritization_options.sb_history": 0},
       "sb_history=0 must be >= 1"),
      ({"learning_rate": float("nan")}, "learning_rate=nan must be a finite number > 0"),
      ({"learning_rate": float("inf")}, "learning_rate=inf must be a finite number > 0"),
      ({"momentum": 1.5}, "momentum=1.5 must be in \\[0, 1\\)"),
      ({"weighting.scheme": "self_paced", "weighting.temperature": 0.0},
       "weighting.temperature=0.0 must be a finite number > 0"),
  ])
  def test_refused_before_the_workdir(self, tiny_dir, tmp_path, overrides, match):
    with pytest.raises(ConfigError, match=match):
      train_and_evaluate(config_of(tiny_dir, **overrides), tmp_path / "w")
    assert not (tmp_path / "w").exists()

  def test_augment_on_one_dimensional_data(self, tmp_path):
    config = engine_fixtures.tiny_config("", dataset="mnist1d", augment=True, num_epochs=1)
    with pytest.raises(ConfigError, match="augment=True crops and flips images.*\\(40, 1\\)"):
      train_and_evaluate(config, tmp_path / "w")
    assert not (tmp_path / "w").exists()


class TestDivergence:

  def test_in_the_first_epoch_no_checkpoint_is_claimed(self, tiny_dir, tmp_path):
    with pytest.raises(TrainingDiverged) as e:
      train_and_evaluate(config_of(tiny_dir, learning_rate=1e12), tmp_path / "w")
    message = str(e.value)
    assert "in epoch 1" in message and "no checkpoint had been written yet" in message
    assert "last good checkpoint" not in message and "learning_rate=1000000000000.0" in message

  def test_absurd_inputs_are_the_first_suspect(self, tiny_dir):
    import types
    config = config_of(tiny_dir, **{"weighting.scheme": "self_paced"})
    images = np.zeros((4, 2, 2, 1), np.float32)
    images[1] = 3e30
    setup = types.SimpleNamespace(config=config, dataset=types.SimpleNamespace(
        train=types.SimpleNamespace(images=images)))
    run = types.SimpleNamespace(checkpoint_dir=pathlib.Path("/w/checkpoints"))
    message = epoch_lib.divergence_message(setup, float("inf"), 4, 3, run)
    assert "last good checkpoint (epoch 3) is kept in /w/checkpoints" in message
    assert message.index("the inputs") < message.index("weighting.scheme=self_paced") < (
        message.index("learning_rate"))


class TestInterrupt:

  @pytest.mark.slow
  def test_ctrl_c_names_the_epoch_and_the_rerun_resumes_exactly(self, tiny_dir, reference,
                                                                tmp_path, monkeypatch, capsys):
    real = epoch_lib.train_epoch

    def interrupted_in_epoch_3(setup, core, features, state, epoch, *args, **kwargs):
      if epoch == 2:
        raise KeyboardInterrupt
      return real(setup, core, features, state, epoch, *args, **kwargs)

    from regularity_jax.training import loop
    monkeypatch.setattr(loop, "train_epoch", interrupted_in_epoch_3)
    workdir = tmp_path / "run"
    one_line_exit(train_and_evaluate, config_of(tiny_dir), workdir, code=130)
    line = stderr_line(capsys)
    assert line == ("error: interrupted at epoch 3; rerun the same command to resume (from the "
                    "checkpoint of epoch 2)")
    assert not (workdir / "run.lock").exists()
    monkeypatch.setattr(loop, "train_epoch", real)
    assert_same_run(reference, train_and_evaluate(config_of(tiny_dir), workdir))

  def test_interrupt_class_is_not_a_keyboard_interrupt(self):
    assert not issubclass(Interrupted, KeyboardInterrupt)


class TestDisk:

  @pytest.mark.slow
  def test_full_disk_mid_run_is_one_line_and_resumes(self, tiny_dir, reference, tmp_path,
                                                     monkeypatch, capsys):
    real = RunDirectory.append_metrics

    def full_at_epoch_2(self, record):
      if record["epoch"] == 2:
        with self.metrics_path.open("a") as f:
          f.write('{"epoch": 2, "train_lo')  # what a full disk leaves: half a line
        raise OSError(errno.ENOSPC, "No space left on device", str(self.metrics_path))
      return real(self, record)

    monkeypatch.setattr(RunDirectory, "append_metrics", full_at_epoch_2)
    workdir = tmp_path / "run"
    one_line_exit(train_and_evaluate, config_of(tiny_dir), workdir)
    line = stderr_line(capsys)
    assert "cannot write" in line and "metrics.jsonl: No space left on device" in line
    assert "rerun the same command to resume" in line
    monkeypatch.setattr(RunDirectory, "append_metrics", real)
    assert_same_run(reference, train_and_evaluate(config_of(tiny_dir), workdir))
    assert "incomplete" in capsys.readouterr().err  # the half line was dropped, with a word

  @pytest.mark.parametrize("code,text", [(errno.EROFS, "Read-only file system"),
                                         (errno.EACCES, "Permission denied")])
  def test_read_only_workdir(self, tiny_dir, tmp_path, monkeypatch, capsys, code, text):
    # Tests run as root, where chmod cannot make a directory read-only: the OS's answer is
    # raised where the workdir is first created.
    def refuse(self, *args, **kwargs):
      raise OSError(code, text, str(self))

    monkeypatch.setattr(pathlib.Path, "mkdir", refuse)
    one_line_exit(train_and_evaluate, config_of(tiny_dir), tmp_path / "ro" / "run")
    line = stderr_line(capsys)
    assert f"cannot write {tmp_path / 'ro' / 'run'}: {text}" in line
    assert "writable --workdir" in line

  def test_wrapped_disk_errors_are_found(self):
    try:
      try:
        raise OSError(errno.ENOSPC, "No space left on device", "/x/ckpt")
      except OSError as e:
        raise ValueError("tensorstore: write failed") from e
    except ValueError as wrapped:
      assert entrypoints.disk_error(wrapped) == "cannot write /x/ckpt: No space left on device"
    assert entrypoints.disk_error(ValueError("shape mismatch")) is None


class TestCheckpoints:

  def _damage(self, workdir, how):
    newest = workdir / "checkpoints" / "3"
    if how == "empty_folder":
      shutil.rmtree(newest)
      newest.mkdir()
      return
    data_files = sorted((p for p in newest.rglob("*") if p.is_file() and "/d/" in str(p)),
                        key=lambda p: -p.stat().st_size)
    target = data_files[0]
    raw = bytearray(target.read_bytes())
    if how == "truncated":
      target.write_bytes(bytes(raw[: len(raw) // 2]))
    else:  # one bit flipped: Orbax reads it back without complaint; the digest does not
      raw[len(raw) // 2] ^= 0x10
      target.write_bytes(bytes(raw))

  @pytest.mark.parametrize("how", ["truncated", "bit_flipped", "empty_folder"])
  def test_damaged_newest_is_set_aside_and_the_previous_restored(self, tmp_path, capsys, how):
    """The part: Checkpointer.restore_or on a hand-made state (the run below checks the rest)."""
    import flax
    import jax.numpy as jnp

    @flax.struct.dataclass
    class State:
      params: dict
      epoch: jnp.ndarray

    saved = Checkpointer(tmp_path / "checkpoints", max_to_keep=3)
    for epoch in (2, 3):
      saved.save(epoch, State({"w": jnp.full((4096,), epoch, jnp.float32)}, jnp.array(epoch)))
    saved.close()
    self._damage(tmp_path, how)
    picker = Checkpointer(tmp_path / "checkpoints", max_to_keep=3)
    state, epoch = picker.restore_or(State({"w": jnp.zeros((4096,), jnp.float32)},
                                           jnp.array(0)))
    picker.close()
    assert epoch == 2 and np.all(np.asarray(state.params["w"]) == 2.0)
    warnings = [l for l in capsys.readouterr().err.splitlines()
                if l.startswith("warning: checkpoint")]
    assert len(warnings) == 1 and "kept as damaged-3" in warnings[0], warnings
    assert (tmp_path / "checkpoints" / "damaged-3").is_dir()
    assert (tmp_path / "checkpoints" / "damaged-3.digest.json").is_file()

  @pytest.mark.slow
  @pytest.mark.parametrize("how", ["truncated"])
  def test_damaged_newest_resumes_from_the_previous_and_is_kept(self, tiny_dir, reference,
                                                                tmp_path, capsys, how):
    workdir = finished_copy(reference, tmp_path)
    self._damage(workdir, how)
    (workdir / "scores.npz").unlink()
    resumed = train_and_evaluate(config_of(tiny_dir), workdir)
    err = capsys.readouterr().err
    warnings = [l for l in err.splitlines() if l.startswith("warning: checkpoint")]
    assert len(warnings) == 1 and "kept as damaged-3" in warnings[0], err
    assert (workdir / "checkpoints" / "damaged-3").is_dir()
    assert_same_run(reference, resumed)

  def test_other_state_format(self, tmp_path):
    import jax.numpy as jnp
    old = Checkpointer(tmp_path / "ckpt")
    old.save(1, {"params": {"w": jnp.ones(3)}, "epoch": jnp.array(1)})
    old.close()
    new = Checkpointer(tmp_path / "ckpt")
    with pytest.raises(CheckpointFormatError) as e:
      new.restore_or({"params": {"w": jnp.ones(3), "b": jnp.zeros(2)}, "epoch": jnp.array(0)})
    assert "another state format" in str(e.value) and "params.b" in str(e.value)
    assert "not damaged" in str(e.value)
    assert (tmp_path / "ckpt" / "1").is_dir()  # untouched


class TestRunFiles:

  def test_corrupt_config_json(self, tiny_dir, reference, tmp_path):
    workdir = finished_copy(reference, tmp_path)
    (workdir / "config.json").write_text('{"dataset": "mni')
    before = files_of(workdir)
    with pytest.raises(RunDirectoryError) as e:
      train_and_evaluate(config_of(tiny_dir), workdir)
    assert "config.json cannot be read" in str(e.value) and "\n" not in str(e.value)
    assert files_of(workdir) == before

  @pytest.mark.slow
  def test_metrics_last_line_cut_reruns_that_epoch(self, tiny_dir, reference, tmp_path,
                                                   capsys):
    workdir = finished_copy(reference, tmp_path)
    text = (workdir / "metrics.jsonl").read_text()
    (workdir / "metrics.jsonl").write_text(text[: len(text) - 40])
    (workdir / "scores.npz").unlink()
    resumed = train_and_evaluate(config_of(tiny_dir), workdir)
    err = capsys.readouterr().err
    assert "the last line of" in err and "superseded-3" in err
    assert_same_run(reference, resumed)

  def test_damaged_middle_line(self, tiny_dir, reference, tmp_path):
    workdir = finished_copy(reference, tmp_path)
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    lines[0] = lines[0][:10]
    (workdir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(RunDirectoryError, match="metrics.jsonl line 1 is damaged"):
      train_and_evaluate(config_of(tiny_dir), workdir)


class TestOwnership:

  def test_bad_data_leaves_no_workdir(self, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.npz").write_bytes(b"garbage")
    with pytest.raises(data.DataError):
      train_and_evaluate(engine_fixtures.tiny_config(tmp_path / "d"), tmp_path / "w")
    assert not (tmp_path / "w").exists()


class TestLock:

  def test_a_second_live_run_is_refused(self, tiny_dir, reference, tmp_path):
    workdir = finished_copy(reference, tmp_path)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
      (workdir / "run.lock").write_text(json.dumps(
          {"pid": sleeper.pid, "host": socket.gethostname(), "since": "earlier"}))
      before = files_of(workdir)
      with pytest.raises(RunDirectoryError) as e:
        train_and_evaluate(config_of(tiny_dir), workdir)
      assert f"in use by a live run (pid {sleeper.pid}" in str(e.value)
      assert files_of(workdir) == before
    finally:
      sleeper.kill()
      sleeper.wait()

  def test_a_stale_lock_is_taken_over(self, tiny_dir, reference, tmp_path):
    workdir = finished_copy(reference, tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (workdir / "run.lock").write_text(json.dumps(
        {"pid": dead.pid, "host": socket.gethostname(), "since": "earlier"}))
    (workdir / "scores.npz").unlink()
    assert_same_run(reference, train_and_evaluate(config_of(tiny_dir), workdir))
    assert not (workdir / "run.lock").exists()

  def test_a_half_written_lock_is_stale(self, tmp_path):
    run = RunDirectory(tmp_path / "w", {"a": 1})
    (run.path / "run.lock").write_text('{"pid": 12')
    run.lock()
    assert json.loads((run.path / "run.lock").read_text())["pid"] == os.getpid()
    run.unlock()
    assert not (run.path / "run.lock").exists()


class TestPaths:
  """Part 4: the paths people type. Checked by RunDirectory.check, before any data or training."""

  def test_tilde_and_variables_are_expanded_and_made_absolute(self, tmp_path, monkeypatch):
    from regularity_jax.runs import directory
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RUNS36", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    assert directory.expand_path("~/runs/x") == tmp_path / "home" / "runs" / "x"
    assert directory.expand_path("$RUNS36/x") == tmp_path / "runs" / "x"
    assert directory.expand_path("${RUNS36}/y") == tmp_path / "runs" / "y"
    assert directory.expand_path("rel/x") == tmp_path / "rel" / "x"
    run = RunDirectory("~/runs/x", {"a": 1})
    assert run.path == tmp_path / "home" / "runs" / "x" and run.path.is_dir()
    assert not (tmp_path / "~").exists()

  def test_an_unset_variable_is_one_line(self, tmp_path, monkeypatch):
    monkeypatch.delenv("NOSUCH36", raising=False)
    with pytest.raises(RunDirectoryError, match="environment variable \\$NOSUCH36, which is "
                       "not set"):
      RunDirectory.check("$NOSUCH36/x", {"a": 1})

  def test_config_path_fields_are_expanded(self, monkeypatch):
    from regularity_jax.training import config as config_lib
    monkeypatch.setenv("HOME", "/home/u36")
    config = config_lib.default_config()
    config.data_dir = "~/data/mnist"
    config.pruning.scores_path = "$HOME/runs/a/scores.npz"
    config.weighting.scores_path = "relative/scores.npz"  # kept: a resume compares config.json
    config_lib.expand_paths(config)
    assert config.data_dir == "/home/u36/data/mnist"
    assert config.pruning.scores_path == "/home/u36/runs/a/scores.npz"
    assert config.weighting.scores_path == "relative/scores.npz"

  def test_relative_paths_are_recorded_resolved(self, tmp_path, monkeypatch):
    from regularity_jax.training import config as config_lib
    monkeypatch.chdir(tmp_path)
    config = config_lib.default_config()
    config.dataset = "./data/mine.npz"
    config.data_dir = "shared/../data"
    config.pruning.scores_path = "runs/a/scores.npz"
    config.weighting.scores_path = "/abs/scores.npz"
    config_lib.record_resolved_paths(config)
    assert config.data_dir == "shared/../data"  # as typed: a resume compares config.json
    assert config.resolved_paths.to_dict() == {
        "dataset": str(tmp_path / "data" / "mine.npz"), "data_dir": str(tmp_path / "data"),
        "pruning_scores_path": str(tmp_path / "runs" / "a" / "scores.npz")}
    absolute = config_lib.default_config()
    absolute.data_dir = str(tmp_path)
    config_lib.record_resolved_paths(absolute)
    assert "resolved_paths" not in absolute  # nothing relative: the config as it was

  def test_a_resume_whose_relative_path_names_other_files_is_refused(self, tmp_path):
    here = {"data_dir": "data", "resolved_paths": {"data_dir": str(tmp_path / "a" / "data")}}
    RunDirectory(tmp_path / "w", here)
    elsewhere = {"data_dir": "data", "resolved_paths": {"data_dir": str(tmp_path / "b/data")}}
    with pytest.raises(RunDirectoryError, match="resolved_paths.data_dir"):
      RunDirectory.check(tmp_path / "w", elsewhere)
    assert RunDirectory.check(tmp_path / "w", here) is not None
    RunDirectory(tmp_path / "old", {"data_dir": "data"})  # a version without resolved_paths
    RunDirectory.check(tmp_path / "old", elsewhere)  # resumes: the paths as typed decide

  @pytest.mark.parametrize("case", ["parent_is_a_file", "dangling_symlink", "long_name",
                                    "not_utf8"])
  def test_a_workdir_that_cannot_be_a_run_directory(self, tmp_path, case):
    if case == "parent_is_a_file":
      (tmp_path / "f").write_text("x")
      workdir, fragment = tmp_path / "f" / "run", "is a file, not a folder"
    elif case == "dangling_symlink":
      (tmp_path / "link").symlink_to(tmp_path / "gone")
      workdir, fragment = tmp_path / "link", "which does not exist"
    elif case == "long_name":
      workdir, fragment = tmp_path / ("r" * 256), "a name of 256 bytes"
    else:
      workdir = pathlib.Path(os.fsdecode(bytes(tmp_path) + b"/run\xff"))
      fragment = "is not a UTF-8 name"
    before = files_of(tmp_path)
    with pytest.raises(RunDirectoryError) as e:
      RunDirectory.check(workdir, {"a": 1})
    assert fragment in str(e.value) and "\n" not in str(e.value)
    assert files_of(tmp_path) == before

  def test_refused_before_data_and_training(self, tiny_dir, tmp_path, monkeypatch):
    from regularity_jax.training import setup as setup_lib
    monkeypatch.setattr(setup_lib.Setup, "create", lambda *a, **k: pytest.fail("trained"))
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunDirectoryError, match="is a file, not a folder"):
      train_and_evaluate(config_of(tiny_dir), tmp_path / "f" / "run")


class TestConfigFaults:
  """Part 4: fields that were tracebacks or silently another run."""

  @pytest.mark.parametrize("overrides,match", [
      ({"seed": 2**32}, "seed=4294967296 must be an integer in \\[0, 4294967295\\]"),
      ({"seed": 2**40}, "seed=1099511627776 must be an integer in"),
      ({"seed": 2**32 - 1, "num_seeds": 2}, "seed=4294967295 must be an integer in "
       "\\[0, 4294967294\\]"),
      ({"holdout.seed": -1}, "holdout.seed=-1 must be a non-negative integer"),
      ({"aum_threshold.seed": -1}, "aum_threshold.seed=-1 must be a non-negative integer"),
      ({"pruning.seed": -1}, "pruning.seed=-1 must be a non-negative integer"),
      ({"schedule": "multistep", "lr_milestones": (1, 2), "lr_gamma": -0.1},
       "lr_gamma=-0.1 must be a finite number >= 0"),
      ({"schedule": "multistep", "lr_milestones": (2, 2)}, "names epoch 2 more than once"),
      ({"dataset": "MNIST"}, "unknown dataset 'MNIST': did you mean 'mnist'\\?"),
  ])
  def test_refused_before_the_workdir(self, tiny_dir, tmp_path, overrides, match):
    with pytest.raises(ConfigError, match=match):
      train_and_evaluate(config_of(tiny_dir, **overrides), tmp_path / "w")
    assert not (tmp_path / "w").exists()

  def test_a_large_seed_within_range_is_its_own_run(self):
    import jax
    keys = {int(s): tuple(np.asarray(jax.random.key_data(jax.random.key(s))))
            for s in (0, 2**31, 2**32 - 1)}
    assert len(set(keys.values())) == 3  # the refused 2**32 would have been seed 0's key

  @pytest.mark.parametrize("returns,match", [
      ("dict", "the config is a dict, not an ml_collections.ConfigDict"),
      ("bare", "the config has no field 'model'"),
  ])
  def test_get_config_of_another_kind(self, tmp_path, returns, match):
    import ml_collections
    from regularity_jax.training import config as config_lib
    if returns == "dict":
      config = config_lib.default_config().to_dict()
    else:
      config = ml_collections.ConfigDict({"dataset": "mnist1d", "num_epochs": 1})
    with pytest.raises(ConfigError, match=match):
      train_and_evaluate(config, tmp_path / "w")
    assert not (tmp_path / "w").exists()

  def test_a_config_file_without_get_config(self, tmp_path):
    message = cli.explain(AttributeError("module 'config_config' has no attribute "
                                         "'get_config'"), ["--config=x.py"])
    assert "defines no get_config()" in message and "'module'" not in message

  def test_train_subset_out_of_range_suggests_0(self, tiny_dir, tmp_path):
    with pytest.raises(data.DataError) as e:
      train_and_evaluate(config_of(tiny_dir, train_subset=10**6), tmp_path / "w")
    assert "or 0 for the full split" in str(e.value) and "None" not in str(e.value)
    assert not (tmp_path / "w").exists()


class TestReportCommand:
  """Part 4: experiments.report (report.write) on damaged or foreign run directories."""

  def _write(self, workdir):
    from regularity_jax import report
    return report.write(workdir, pngs=False)

  def test_a_cut_metrics_line_is_left_out(self, reference, tmp_path, capsys):
    workdir = finished_copy(reference, tmp_path)
    text = (workdir / "metrics.jsonl").read_text()
    (workdir / "metrics.jsonl").write_text(text[: len(text) - 40])
    assert self._write(workdir).is_file()
    assert "metrics.jsonl line 3 is damaged; the report leaves it out" in capsys.readouterr().err

  def test_an_empty_wall_time_is_left_out(self, reference, tmp_path):
    workdir = finished_copy(reference, tmp_path)
    (workdir / "wall_time.json").write_text("")
    html = self._write(workdir).read_text()
    assert "wall time" not in html

  @pytest.mark.parametrize("config_text", ['{"lr": 0.1, "epochs": 3}', "[1, 2]", "not json"])
  def test_another_tools_directory(self, tmp_path, config_text):
    from regularity_jax import report
    (tmp_path / "config.json").write_text(config_text)
    np.savez(tmp_path / "scores.npz", loss=np.zeros(3))
    before = files_of(tmp_path)
    with pytest.raises(report.ReportError) as e:
      self._write(tmp_path)
    assert "regularity_jax run" in str(e.value) and "\n" not in str(e.value)
    assert files_of(tmp_path) == before

  def test_twice_at_once_is_refused_and_a_stale_lock_taken_over(self, reference, tmp_path):
    from regularity_jax import report
    workdir = finished_copy(reference, tmp_path)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
      (workdir / "report.lock").write_text(json.dumps({"pid": sleeper.pid,
                                                       "host": socket.gethostname()}))
      with pytest.raises(report.ReportError, match=f"being written by another process "
                         f"\\(pid {sleeper.pid}"):
        self._write(workdir)
    finally:
      sleeper.kill()
      sleeper.wait()
    assert self._write(workdir).is_file()  # the lock of a process that is gone is stale
    assert not (workdir / "report.lock").exists()

  def test_a_closed_stdout_pipe_is_harmless(self):
    read, write = os.pipe()
    os.close(read)
    stream = entrypoints._Guarded(os.fdopen(write, "w"))
    stream.write("report: x\n")
    stream.flush()  # the reader is gone: EPIPE, silenced (the fd now points at /dev/null)
    stream.write("more\n")
    stream.flush()
    stream.close()

  def test_a_stream_closed_at_start_is_replaced(self, monkeypatch):
    monkeypatch.setattr(sys, "stderr", None)
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    entrypoints.guard_streams()
    print("progress", file=sys.stderr, flush=True)  # tqdm's first update died here
    assert sys.stderr is not None

  @pytest.mark.slow
  def test_report_command_with_closed_stdout_and_stderr(self, reference, tmp_path):
    workdir = finished_copy(reference, tmp_path)
    for fd in ("1", "2"):
      out = subprocess.run(
          f"{sys.executable} -m experiments.report --workdir={workdir} --pngs=false "
          f"{fd}>&- ", shell=True, cwd=REPO, capture_output=False, timeout=300)
      assert out.returncode == 0
    out = subprocess.run(f"set -o pipefail; {sys.executable} -m experiments.report "
                         f"--workdir={workdir} --pngs=false | true", shell=True, cwd=REPO,
                         timeout=300, executable="/bin/bash")
    assert out.returncode == 0


class TestSigterm:
  """Part 4: a scheduler's SIGTERM stops at a step boundary, releases the lock, exits 143."""

  def test_the_handler_sets_a_flag_and_is_restored(self):
    import signal
    from regularity_jax.training import signals
    before = signal.getsignal(signal.SIGTERM)
    with signals.on_sigterm(30.0, lambda: None):
      assert not signals.requested()
      os.kill(os.getpid(), signal.SIGTERM)
      assert signals.requested()
      with pytest.raises(signals.Terminated):
        signals.check()
    assert signal.getsignal(signal.SIGTERM) == before and not signals.requested()

  def test_no_step_boundary_within_the_grace_period(self):
    script = ("import importlib.util, os, signal, time\n"  # the module alone: no JAX start
              "spec = importlib.util.spec_from_file_location('signals', "
              "'regularity_jax/training/signals.py')\n"
              "signals = importlib.util.module_from_spec(spec)\n"
              "spec.loader.exec_module(signals)\n"
              "with signals.on_sigterm(0.2, lambda: print('released', flush=True)):\n"
              "  os.kill(os.getpid(), signal.SIGTERM)\n"
              "  time.sleep(30)  # a long compilation: no step boundary\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 143 and out.stdout == "released\n", out.stderr[-1000:]

  @pytest.mark.parametrize("progress,fragments", [
      ({"epoch": 3, "checkpoint": 2}, ["terminated by SIGTERM at epoch 3", "from the checkpoint "
                                       "of epoch 2", "lock is released"]),
      ({"epoch": 1, "checkpoint": 0}, ["at epoch 1", "no checkpoint had been written yet"]),
      ({"epoch": 3, "checkpoint": 3, "trained": True}, ["after the last trained epoch (3"]),
  ])
  def test_messages(self, progress, fragments):
    from regularity_jax.training import loop
    from regularity_jax.training import signals
    with pytest.raises(entrypoints_terminated()) as e:
      with loop.interrupt_message(progress):
        raise signals.Terminated
    for fragment in fragments:
      assert fragment in str(e.value)

  def test_ctrl_c_after_the_last_epoch_is_not_before_training(self):
    from regularity_jax.training import loop
    with pytest.raises(Interrupted) as e:
      with loop.interrupt_message({"epoch": 3, "checkpoint": 3, "trained": True}):
        raise KeyboardInterrupt
    assert "before training started" not in str(e.value)
    assert "after the last trained epoch (3, checkpointed)" in str(e.value)
    assert "nothing is trained again" in str(e.value)

  @pytest.mark.slow
  @pytest.mark.parametrize("when", ["between_steps", "mid_epoch", "mid_epoch_stream",
                                    "after_epoch"])
  def test_sigterm_is_one_line_143_and_the_rerun_resumes_exactly(
      self, tiny_dir, reference, tmp_path, monkeypatch, capsys, when):
    import signal
    from regularity_jax.training import inputs
    from regularity_jax.training import loop
    real, real_rows = epoch_lib.train_epoch, {}

    def sigterm_in_epoch_2(setup, core, features, state, epoch, *args, **kwargs):
      if epoch == 1 and when == "between_steps":
        os.kill(os.getpid(), signal.SIGTERM)  # the first step boundary of epoch 2 stops
      out = real(setup, core, features, state, epoch, *args, **kwargs)
      if epoch == 1 and when == "after_epoch":
        os.kill(os.getpid(), signal.SIGTERM)  # epoch 2 ends whole: checkpointed at once
      return out

    def sigterm_after_3_rows_of_epoch_2(cls):
      real_rows[cls] = cls.train_rows
      calls = []

      def train_rows(self, setup, plan, num_rows, **kwargs):
        calls.append(1)
        for r, row in enumerate(real_rows[cls](self, setup, plan, num_rows, **kwargs)):
          if len(calls) == 2 and r == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # steps 1-3 of 6 done: the 4th stops
          yield row

      monkeypatch.setattr(cls, "train_rows", train_rows)

    monkeypatch.setattr(loop, "train_epoch", sigterm_in_epoch_2)
    pipeline = inputs.StreamInput if when == "mid_epoch_stream" else inputs.DeviceInput
    if when.startswith("mid_epoch"):
      sigterm_after_3_rows_of_epoch_2(pipeline)
    # checkpoint_every=3: only the SIGTERM's own checkpoint can save epoch 2's work.
    config = config_of(tiny_dir, checkpoint_every=3,
                       input_pipeline="stream" if when == "mid_epoch_stream" else "device")
    workdir = tmp_path / "run"
    one_line_exit(train_and_evaluate, config, workdir, code=143)
    line = stderr_line(capsys)
    done = {"between_steps": 0, "after_epoch": None}.get(when, 3)
    if done is not None:
      assert line == (f"error: terminated by SIGTERM at epoch 2 after {done} of its 6 steps "
                      "(checkpointed there); rerun the same command to resume from that step; "
                      "the workdir's lock is released")
      assert [p.name for p in (workdir / "checkpoints").iterdir()
              if p.name.startswith("partial")] == [f"partial-1-{done}"]
    else:
      assert line == ("error: terminated by SIGTERM at epoch 3; rerun the same command to "
                      "resume (from the checkpoint of epoch 2); the workdir's lock is released")
      assert (workdir / "checkpoints" / "2").is_dir()
    assert not (workdir / "run.lock").exists()
    for cls, rows in real_rows.items():
      monkeypatch.setattr(cls, "train_rows", rows)
    trained = []  # (epoch, the rows it resumed after): the rerun continues where it stopped

    def recorded(setup, core, features, state, epoch, *args, **kwargs):
      resume = kwargs.get("resume")
      trained.append((epoch, None if resume is None else int(resume["rows"])))
      return real(setup, core, features, state, epoch, *args, **kwargs)

    monkeypatch.setattr(loop, "train_epoch", recorded)
    assert_same_run(reference, train_and_evaluate(config, workdir))
    assert trained == ([(1, done), (2, None)] if done is not None else [(2, None)])
    # the finished run's checkpoint of epoch 3 superseded the mid-epoch one
    assert not list((workdir / "checkpoints").glob("partial-*"))


def entrypoints_terminated():
  from regularity_jax.training import Terminated
  return Terminated


class TestLockHolders:
  """Part 4: run.lock names host, pid, scheduler job and a heartbeat (hand-made locks)."""

  def _lock(self, workdir, **holder):
    workdir.mkdir(exist_ok=True)
    (workdir / "config.json").write_text(json.dumps({"a": 1}))  # a run's, resumed
    base = {"pid": 4242, "host": "node-7", "since": "2026-12-07T10:00:00"}
    (workdir / "run.lock").write_text(json.dumps({**base, **holder}))

  def test_the_lock_records_host_pid_job_and_heartbeat(self, tmp_path, monkeypatch):
    import time
    monkeypatch.setenv("SLURM_JOB_ID", "991")
    run = RunDirectory(tmp_path / "w", {"a": 1}, lock=True)
    try:
      holder = json.loads((run.path / "run.lock").read_text())
      assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
      assert holder["job"] == "SLURM_JOB_ID=991" and abs(holder["heartbeat"] - time.time()) < 60
    finally:
      run.unlock()
    assert not (run.path / "run.lock").exists()

  def test_the_heartbeat_is_renewed(self, tmp_path, monkeypatch):
    import time
    from regularity_jax.runs import directory
    monkeypatch.setattr(directory, "HEARTBEAT_S", 0.05)
    run = RunDirectory(tmp_path / "w", {"a": 1}, lock=True)
    try:
      first = json.loads((run.path / "run.lock").read_text())["heartbeat"]
      time.sleep(0.5)
      assert json.loads((run.path / "run.lock").read_text())["heartbeat"] > first
    finally:
      run.unlock()
    time.sleep(0.2)
    assert not (run.path / "run.lock").exists()

  def test_another_hosts_live_run_is_refused_naming_host_pid_age_and_the_field(
      self, tmp_path, monkeypatch):
    import time
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    self._lock(tmp_path / "w", job="SLURM_JOB_ID=5", heartbeat=time.time() - 30)
    with pytest.raises(RunDirectoryError) as e:
      RunDirectory.check(tmp_path / "w", {"a": 1})
    message = str(e.value)
    for fragment in ("pid 4242 on node-7", "job SLURM_JOB_ID=5", "last heartbeat 3",
                     "--config.take_over_lock=True"):
      assert fragment in message, message

  @pytest.mark.parametrize("case", ["requeued_job", "stale_heartbeat", "forced"])
  def test_taken_over(self, tmp_path, monkeypatch, case):
    import time
    from regularity_jax.runs import directory
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    config = {"a": 1}
    if case == "requeued_job":  # the same job on another node after a requeue
      self._lock(tmp_path / "w", job="SLURM_JOB_ID=77", heartbeat=time.time())
    elif case == "stale_heartbeat":
      self._lock(tmp_path / "w", job="SLURM_JOB_ID=5",
                 heartbeat=time.time() - directory.STALE_S - 1)
    else:
      self._lock(tmp_path / "w", job="SLURM_JOB_ID=5", heartbeat=time.time())
      config = {"a": 1, "take_over_lock": True}
    run = RunDirectory(tmp_path / "w", config, lock=True)
    try:
      assert json.loads((run.path / "run.lock").read_text())["pid"] == os.getpid()
    finally:
      run.unlock()

  def test_take_over_lock_does_not_block_a_resume(self):
    from regularity_jax.runs import directory
    assert "take_over_lock" in directory.RESUME_NEUTRAL


# Part 3: a finished run's files and the data it came from are never lost or mixed.


def snapshot(workdir) -> dict[str, bytes]:
  """{relative path: bytes} of every file of a run directory."""
  return {str(p.relative_to(workdir)): p.read_bytes() for p in sorted(workdir.rglob("*"))
          if p.is_file()}


def swapped_copy(reference, tiny_dir, tmp_path, change: str):
  """A copy of the finished reference run whose dataset file (config.json's `dataset`, at a
  path of the copy's own) now holds other data: `change` in pixels, labels, shape,
  class_names. Returns (workdir, the config that names that file)."""
  workdir = finished_copy(reference, tmp_path)
  with np.load(tiny_dir / "tiny.npz") as f:
    arrays = dict(f)
  if change == "pixels":  # same ids and labels (a same-size Fashion-MNIST under mnist's name)
    arrays["x_train"] = 255 - arrays["x_train"]
  elif change == "labels":
    arrays["y_train"] = (arrays["y_train"] + 1) % 4
  elif change == "shape":
    arrays["x_train"], arrays["x_test"] = arrays["x_train"][:, :5, :5], arrays["x_test"][:, :5, :5]
  elif change == "class_names":
    arrays["class_names"] = np.asarray(["ant", "bee", "cat", "dog"])
  (tmp_path / "data").mkdir()
  np.savez(tmp_path / "data" / "tiny.npz", **arrays)
  config = config_of(tmp_path / "data")
  saved = json.loads((workdir / "config.json").read_text())
  saved["dataset"] = config.dataset
  (workdir / "config.json").write_text(json.dumps(saved, indent=2, sort_keys=True))
  return workdir, config


def cut_metrics(workdir, epochs: int) -> None:
  """metrics.jsonl as a run killed after `epochs` epochs left it (scores not yet written)."""
  lines = (workdir / "metrics.jsonl").read_text().splitlines(keepends=True)
  (workdir / "metrics.jsonl").write_text("".join(lines[:epochs]))
  for name in ("scores.npz", "scores_train.csv", "scores_test.csv"):
    (workdir / name).unlink()


class TestDataChanged:
  """Fault 1 (data swapped between a kill and the rerun, or under a finished run) and fault 4
  (the report command on other data of the same sizes)."""

  @pytest.mark.slow
  @pytest.mark.parametrize("change,how,named", [
      ("pixels", "killed", "other inputs (pixels) at the sampled examples"),
      ("labels", "finished", "other train labels"),
      ("shape", "killed", "example shape (6, 6, 1) -> (5, 5, 1)"),
      ("class_names", "finished", "class names '0' -> 'ant'"),
  ])
  def test_a_rerun_on_other_data_is_one_line(self, reference, tiny_dir, tmp_path, capsys,
                                             change, how, named):
    workdir, config = swapped_copy(reference, tiny_dir, tmp_path, change)
    if how == "killed":
      cut_metrics(workdir, 2)
    else:  # a finished run missing a file: it would be written from the other data
      (workdir / "scores_train.csv").unlink()
    before = snapshot(workdir)
    one_line_exit(train_and_evaluate, config, workdir)
    line = stderr_line(capsys)
    assert f"the data of {workdir} changed since it was trained on" in line, line
    assert named in line and "nothing was changed" in line, line
    assert "another version" not in line
    assert snapshot(workdir) == before

  @pytest.mark.slow
  def test_the_report_command_on_other_labels_is_one_line(self, reference, tiny_dir,
                                                          tmp_path):
    from regularity_jax import report
    workdir, _ = swapped_copy(reference, tiny_dir, tmp_path, "labels")
    report.write(finished_copy(reference, tmp_path / "good"), pngs=False)  # its own data: fine
    before = snapshot(workdir)
    with pytest.raises(report.ReportError) as e:
      report.write(workdir, pngs=False)
    assert "other train labels" in str(e.value) and "\n" not in str(e.value)
    assert "no report was written" in str(e.value)
    assert snapshot(workdir) == before

  @pytest.mark.slow  # the shared reference run
  def test_a_dataset_function_that_cannot_be_imported_again(self, reference, tmp_path):
    from regularity_jax import report
    workdir = finished_copy(reference, tmp_path)
    saved = json.loads((workdir / "config.json").read_text())
    saved["dataset"] = str(tmp_path / "gone.py") + ":load"
    saved["dataset_source"] = {"spec": saved["dataset"], "resolved": saved["dataset"],
                               "sha256": "0" * 64}
    (workdir / "config.json").write_text(json.dumps(saved))
    with pytest.raises(report.ReportError, match="cannot be imported again") as e:
      report.write(workdir, pngs=False)
    assert "\n" not in str(e.value)

  @pytest.mark.slow
  def test_a_run_without_a_record_is_not_refused_and_recorded_from_then_on(
      self, reference, tiny_dir, tmp_path):
    workdir = finished_copy(reference, tmp_path)
    (workdir / "data.json").unlink()  # as a run made before data.json existed
    cut_metrics(workdir, 2)
    resumed = train_and_evaluate(config_of(tiny_dir), workdir)
    assert_same_run(resumed, reference)
    assert json.loads((workdir / "data.json").read_text()) == json.loads(
        (reference.workdir / "data.json").read_text())

  def test_each_difference_is_named(self, tiny_dir):
    from regularity_jax.runs import data_record
    dataset = data.load_dataset(str(tiny_dir / "tiny.npz"))
    recorded = data_record.describe(dataset)
    assert data_record.differences(recorded, dataset) == []
    assert data_record.differences(None, dataset) == []  # nothing recorded: never refused
    other = json.loads(json.dumps(recorded))
    other["splits"]["test"]["ids"] = "x"
    other["data_identity"].update(transforms=["permute_pixels:abc"], digest="x")
    assert data_record.differences(other, dataset) == [
        "other test ids", "transforms ['permute_pixels:abc'] -> []"]
    old = data_record.from_provenance({"splits": {"train": {"scored": 95, "fingerprint": "f"}}})
    assert data_record.differences(old, dataset) == ["train examples 95 -> 96"]


class TestFinishedRuns:
  """Fault 3 (checkpoints deleted, then rerun) and fault 2 (difficulty weighting's
  train/weight written again as 1.0)."""

  @pytest.mark.slow  # the shared reference run
  def test_an_intact_finished_run_writes_nothing(self, reference, tiny_dir, tmp_path, capsys):
    workdir = finished_copy(reference, tmp_path)
    before = snapshot(workdir)
    again = train_and_evaluate(config_of(tiny_dir), workdir)
    assert "is finished (3 epochs) and its files are intact: nothing was written" in (
        capsys.readouterr().out)
    assert snapshot(workdir) == before and not (workdir / "run.lock").exists()
    assert_same_run(again, reference)

  @pytest.mark.slow
  def test_missing_files_are_written_again_byte_identical(self, reference, tiny_dir,
                                                          tmp_path, capsys):
    workdir = finished_copy(reference, tmp_path)
    before = snapshot(workdir)
    for name in ("scores.npz", "scores_test.csv"):
      (workdir / name).unlink()
    metrics = (workdir / "metrics.jsonl").read_bytes()
    again = train_and_evaluate(config_of(tiny_dir), workdir)
    assert "written again from its final checkpoint: scores.npz, scores_test.csv" in (
        capsys.readouterr().out)
    after = snapshot(workdir)
    assert after.pop("wall_time.json") != before.pop("wall_time.json")  # this invocation's
    assert after == before and after["metrics.jsonl"] == metrics
    assert_same_run(again, reference)

  @pytest.mark.slow
  def test_the_report_and_plots_are_written_again_equal(self, reference, tiny_dir, tmp_path):
    workdir = finished_copy(reference, tmp_path)
    config = config_of(tiny_dir, plots=True, report=True)  # resume-neutral: they are added
    train_and_evaluate(config, workdir)
    before = snapshot(workdir)
    for name in ("report.html", "plots/data_map.png", "plots/learning_curves.png"):
      (workdir / name).unlink()
    train_and_evaluate(config, workdir)
    after = snapshot(workdir)
    del before["wall_time.json"], after["wall_time.json"]
    # The one difference allowed: the report's "wall time" row (wall_time.json when it was
    # written, which this invocation's time has since increased).
    row = re.compile(rb"<td>wall time</td><td>[^<]*</td>")
    assert row.sub(b"", after.pop("report.html")) == row.sub(b"", before.pop("report.html"))
    assert after == before

  @pytest.mark.slow
  def test_checkpoints_gone_is_one_line_and_never_a_retrain(self, reference, tiny_dir,
                                                            tmp_path, capsys):
    workdir = finished_copy(reference, tmp_path)
    shutil.rmtree(workdir / "checkpoints")  # to save disk
    (workdir / "scores_train.csv").unlink()
    before = snapshot(workdir)
    one_line_exit(train_and_evaluate, config_of(tiny_dir), workdir)
    line = stderr_line(capsys)
    assert ("lacks scores_train.csv, which need its final state, and its checkpoints are "
            "gone") in line
    assert "nothing was trained or changed" in line
    assert snapshot(workdir) == before  # metrics.jsonl whole, the 3-epoch scores untouched
    (workdir / "scores_train.csv").write_bytes((reference.workdir / "scores_train.csv")
                                               .read_bytes())
    train_and_evaluate(config_of(tiny_dir), workdir)  # needs no state: finished
    assert "nothing was written" in capsys.readouterr().out

  @pytest.mark.slow
  def test_difficulty_weights_survive_a_rerun_of_the_final_files(self, tiny_dir, tmp_path):
    config = config_of(tiny_dir, **{"weighting.scheme": "hard_first",
                                     "weighting.score": "loss"})
    first = train_and_evaluate(config, tmp_path / "w")
    weights = first.scores["train/weight"]
    assert np.ptp(weights) > 0  # real weights, not 1.0 everywhere
    for name in ("scores.npz", "scores_train.csv"):  # killed while writing its final files
      (tmp_path / "w" / name).unlink()
    again = train_and_evaluate(config, tmp_path / "w")
    np.testing.assert_array_equal(again.scores["train/weight"], weights)
    with np.load(tmp_path / "w" / "scores.npz") as f:
      np.testing.assert_array_equal(f["train/weight"], weights)


class TestWallTime:
  """Fault 5: wall_time.json sums every invocation, killed ones included."""

  def test_a_killed_invocation_counts_to_its_last_epoch(self, tmp_path):
    config = config_of(tmp_path / "d")
    first = RunDirectory(tmp_path / "w", config)
    first.record_wall_time(5.0)  # after epoch 1
    first.record_wall_time(9.0)  # after epoch 2; then SIGKILL
    assert json.loads((tmp_path / "w" / "wall_time.json").read_text()) == {
        "seconds": 9.0, "invocations": 1}
    second = RunDirectory(tmp_path / "w", config)  # the rerun
    second.record_wall_time(2.0)
    second.record_wall_time(4.0)
    assert json.loads((tmp_path / "w" / "wall_time.json").read_text()) == {
        "seconds": 13.0, "invocations": 2}


class TestExtension:
  """Fault 6: a finished run extended by raising num_epochs."""

  @pytest.mark.slow
  def test_constant_schedule_4_to_6_equals_a_6_epoch_run(self, tiny_dir, tmp_path):
    workdir = tmp_path / "extended"
    four = train_and_evaluate(config_of(tiny_dir, num_epochs=4), workdir)
    four_files = snapshot(workdir)
    extended = train_and_evaluate(config_of(tiny_dir, num_epochs=6), workdir)
    six = train_and_evaluate(config_of(tiny_dir, num_epochs=6), tmp_path / "six")
    assert_same_run(extended, six)
    assert [r["epoch"] for r in extended.metrics] == list(range(1, 7))
    kept = snapshot(workdir / "finished-epoch-4")
    for name in ("scores.npz", "scores_train.csv", "scores_test.csv", "metrics.jsonl",
                 "config.json"):
      assert kept[name] == four_files[name], name
    np.testing.assert_array_equal(four.scores["train/example_id"],
                                  extended.scores["train/example_id"])
    with np.load(workdir / "scores.npz") as f:
      provenance = json.loads(str(f["provenance"]))
    assert provenance["num_epochs"] == 6
    assert [(h["from"], h["to"], h["finished_files"]) for h in provenance["extensions"]] == [
        (4, 6, "finished-epoch-4")]
    assert json.loads((workdir / "config.json").read_text())["num_epochs"] == 6

  @pytest.mark.slow  # the shared reference run
  def test_a_cosine_schedule_is_refused(self, reference, tiny_dir, tmp_path, capsys):
    workdir = finished_copy(reference, tmp_path)
    saved = json.loads((workdir / "config.json").read_text())
    saved["schedule"] = "cosine"  # as if the reference run had used it
    (workdir / "config.json").write_text(json.dumps(saved))
    before = snapshot(workdir)
    one_line_exit(train_and_evaluate, config_of(tiny_dir, schedule="cosine", num_epochs=5),
                  workdir)
    line = stderr_line(capsys)
    assert ("was made with num_epochs=3 and cannot be extended to 5: schedule=cosine decays "
            "the learning rate over num_epochs") in line
    assert snapshot(workdir) == before

  def test_the_parts_that_read_num_epochs(self, tiny_dir):
    from regularity_jax.training import extension
    assert extension.num_epochs_readers(config_of(tiny_dir), 3) == []
    assert extension.num_epochs_readers(
        config_of(tiny_dir, schedule="multistep", lr_milestones=(5,)), 3) == []
    for overrides, reason in [
        ({"prioritization": "infobatch"}, "infobatch anneals"),
        ({"weighting.scheme": "self_paced"}, "self_paced paces"),
        ({"eval_every": 2}, "off the eval_every=2 grid")]:
      assert reason in " ".join(extension.num_epochs_readers(config_of(tiny_dir, **overrides),
                                                             3))
    assert extension.num_epochs_readers(config_of(tiny_dir, eval_every=3), 3) == []
    assert extension.num_epochs_readers(config_of(tiny_dir, eval_every=2), 0) == []
