"""Multi-host runs (`training.hosts`): 2 processes of 2 CPU devices each, over 127.0.0.1 with
JAX's CPU collectives (gloo), against 1 process of 4 devices.

Each run is `python -m experiments.main` in processes of its own (XLA reads the device count
once, when JAX starts); the quickstart config, shrunk to 800 / 200 examples and 6 epochs (and
with `gradient_reduction=fixed_order` too). Done when of issue 18: the
2-process run gives the CBTL (and every other integer statistic) of the 1-process 4-device run;
a SIGKILL of one process and a rerun of both resume identically.
The id-sharded statistics (`shard_statistics`) on 4 devices of one process:
tests/multidevice_cases.py (sharded_statistics_equal_replicated).
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from regularity_jax.training import ConfigError
from regularity_jax.training import default_config
from regularity_jax.training import hosts
from tests import report_checks
from tests.test_training import assert_scores_equal

REPO = pathlib.Path(__file__).resolve().parents[1]
EPOCHS = 6
ARGS = ["--config=experiments/configs/quickstart.py", "--config.train_subset=800",
        "--config.test_subset=200", f"--config.num_epochs={EPOCHS}",
        "--config.checkpoint_every=1", "--config.keep_checkpoints=3", "--config.plots=False",
        "--config.progress_bar=False"]
TIMEOUT = 600  # seconds per run: generous, the CI machine is busy


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def start(workdir, *extra, processes=2, devices=2, logs=None):
  """Starts the run's processes (`processes` of `devices` CPU devices each); returns them.
  Output goes to files (a pipe left unread could block one process and so all of them)."""
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  distributed = []
  if processes > 1:
    distributed = [f"--config.distributed.coordinator_address=127.0.0.1:{free_port()}",
                   f"--config.distributed.num_processes={processes}"]
  logs = pathlib.Path(logs or f"{workdir}.logs")
  logs.mkdir(parents=True, exist_ok=True)
  procs = []
  for i in range(processes):
    args = distributed + ([f"--config.distributed.process_id={i}"] if distributed else [])
    with open(logs / f"{i}.out", "w") as out:
      procs.append(subprocess.Popen(
          [sys.executable, "-m", "experiments.main", *ARGS, *extra, *args,
           f"--workdir={workdir}"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT))
  procs[0].logs = logs
  return procs


def finish(procs):
  """Waits for every process; returns their exit codes and (last lines of) output."""
  codes = []
  for p in procs:
    try:
      codes.append(p.wait(timeout=TIMEOUT))
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      raise
  outputs = [(procs[0].logs / f"{i}.out").read_text() for i in range(len(procs))]
  return codes, outputs


def run(workdir, *extra, processes=2, devices=2):
  codes, outputs = finish(start(workdir, *extra, processes=processes, devices=devices))
  assert codes == [0] * processes, "\n\n".join(o[-3000:] for o in outputs)
  return outputs


def scores(workdir):
  with np.load(pathlib.Path(workdir) / "scores.npz") as f:
    return dict(f)


def records(workdir):
  lines = (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()
  return [{k: v for k, v in json.loads(l).items() if not k.endswith("time_s")} for l in lines]


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
  """{name: workdir}: 1 process of 4 devices, and 2 processes of 2 devices each."""
  base = tmp_path_factory.mktemp("multihost")
  out = {"one_process": base / "one_process", "two_processes": base / "two_processes"}
  run(out["one_process"], processes=1, devices=4)
  run(out["two_processes"])
  return out


@pytest.mark.slow
def test_two_processes_equal_one_process(runs):
  """Same CBTL (every integer statistic identical), floats to the all-reduce's rounding."""
  one, two = scores(runs["one_process"]), scores(runs["two_processes"])
  np.testing.assert_array_equal(one["train/cumulative_correct"], two["train/cumulative_correct"])
  assert one["train/cumulative_correct"].sum() > 0
  assert_scores_equal(one, two, float_atol=1e-5)  # ints, bools, provenance: identical
  a, b = records(runs["one_process"]), records(runs["two_processes"])
  assert [r["epoch"] for r in b] == list(range(1, EPOCHS + 1))  # one line per epoch: one writer
  for ra, rb in zip(a, b):
    assert ra["train_accuracy"] == rb["train_accuracy"] and ra["step"] == rb["step"]
    np.testing.assert_allclose(ra["train_loss"], rb["train_loss"], rtol=1e-5)


@pytest.mark.slow
def test_fixed_order_reduction_is_bit_identical(tmp_path):
  """gradient_reduction=fixed_order on the data of `runs` (800 / 200 examples, 6 epochs), where
  the default all-reduce puts floats apart (test_two_processes_equal_one_process needs a
  tolerance): 2 processes equal 1, every bit of every score and of metrics.jsonl but
  train_loss (the epoch's loss sum is still all-reduced across devices: its last bits may
  differ). So do 2 processes with shard_statistics=True (each holds half the rows; scores
  gathered): the statistics' layout enters no arithmetic of training, and fixed_order fixes
  the one sum that XLA could schedule apart in the sharded program (with the default
  all-reduce, jax 0.12.1 put floats 1.9e-6 apart after 6 epochs on these 800 examples;
  docs/scaling.md, issue 29, which also measured the quickstart's full data for 10 epochs)."""
  full = ["--config.gradient_reduction=fixed_order"]
  run(tmp_path / "one", *full, processes=1, devices=4)
  run(tmp_path / "two", *full)
  run(tmp_path / "sharded", *full, "--config.shard_statistics=True")
  for other in ("two", "sharded"):
    assert_scores_equal(scores(tmp_path / "one"), scores(tmp_path / other), float_atol=0)
    one, two = records(tmp_path / "one"), records(tmp_path / other)
    np.testing.assert_allclose([r.pop("train_loss") for r in one],
                               [r.pop("train_loss") for r in two], rtol=1e-6)
    assert one == two


@pytest.mark.slow
def test_bijection_plan_two_processes_equal_one_process(tmp_path):
  """epoch_plan=bijection (each process evaluates its own columns of the plan, nothing of size
  N) on the data of `runs`, 2 epochs: 2 processes of 2 devices equal 1 process of 4 (integer
  statistics identical, floats to the all-reduce's rounding), every example once per epoch."""
  short = ["--config.epoch_plan=bijection", "--config.num_epochs=2", "--config.report=False"]
  run(tmp_path / "one", *short, processes=1, devices=4)
  run(tmp_path / "two", *short)
  one, two = scores(tmp_path / "one"), scores(tmp_path / "two")
  np.testing.assert_array_equal(one["train/cumulative_correct"], two["train/cumulative_correct"])
  assert_scores_equal(one, two, float_atol=1e-5)
  a, b = records(tmp_path / "one"), records(tmp_path / "two")
  assert [r["examples_presented"] for r in b] == [800, 800]
  for ra, rb in zip(a, b):
    assert ra["train_accuracy"] == rb["train_accuracy"] and ra["step"] == rb["step"]
    np.testing.assert_allclose(ra["train_loss"], rb["train_loss"], rtol=1e-5)
  assert json.loads((tmp_path / "two" / "config.json").read_text())["epoch_plan"] == "bijection"


@pytest.mark.slow
def test_files_written_once_by_process_zero(runs):
  workdir = runs["two_processes"]
  names = sorted(p.name for p in workdir.iterdir())
  assert names == ["checkpoints", "config.json", "data.json", "metrics.jsonl", "plots", "report.html",
                   "scores.npz", "scores_test.csv", "scores_train.csv", "wall_time.json"], names
  report_checks.check_report(workdir)  # process 0 drew every process's examples
  assert json.loads((workdir / "wall_time.json").read_text())["invocations"] == 1
  assert json.loads((workdir / "config.json").read_text())["distributed"]["process_id"] == 0
  ckpts = sorted(p.name for p in (workdir / "checkpoints").iterdir())
  assert ckpts == [str(e) for e in range(EPOCHS - 2, EPOCHS + 1)] + [
      f"digest-{e}.json" for e in range(EPOCHS - 2, EPOCHS + 1)], ckpts


@pytest.mark.slow
def test_stream_input_feeds_each_process_its_columns(runs, tmp_path):
  """Stream mode: each process reads its columns of every batch and the global batch is made
  with jax.make_array_from_process_local_data: the device run's numbers, bit for bit."""
  run(tmp_path / "stream", "--config.input_pipeline=stream")
  assert_scores_equal(scores(runs["two_processes"]), scores(tmp_path / "stream"), float_atol=0)
  assert records(runs["two_processes"]) == records(tmp_path / "stream")


@pytest.mark.slow
def test_sigkill_of_one_process_then_rerun_of_both_resumes_identically(runs, tmp_path):
  """Process 0 (the writer, lock holder and coordinator) is killed once checkpoint 2 exists;
  the other is then killed too, as a cluster's scheduler ends a job whose task died. Both
  rerun with the same command: the uninterrupted 2-process run, bit for bit."""
  workdir = tmp_path / "killed"
  procs = start(workdir)
  deadline = time.time() + TIMEOUT
  ckpts = workdir / "checkpoints"
  while all(p.poll() is None for p in procs):
    if ckpts.exists() and any(p.name.isdigit() and int(p.name) >= 2 for p in ckpts.iterdir()):
      break
    if time.time() > deadline:
      for p in procs:
        p.kill()
      pytest.fail(f"no checkpoint 2 within {TIMEOUT} s: the run hung (metrics.jsonl: "
                  f"{len((workdir / 'metrics.jsonl').read_text().splitlines())} lines)")
    time.sleep(0.02)
  procs[0].send_signal(signal.SIGKILL)
  procs[0].wait()
  procs[1].send_signal(signal.SIGKILL)
  procs[1].wait()
  assert procs[0].returncode == -signal.SIGKILL, "the run finished before it could be killed"
  assert not (workdir / "scores.npz").exists()
  assert (workdir / "run.lock").exists()  # the killed writer's: stale, taken over below
  before = (workdir / "metrics.jsonl").read_text().splitlines()
  assert before

  run(workdir)
  kept = (workdir / "metrics.jsonl").read_text().splitlines()[:len(before) - 1]
  assert kept == before[:len(before) - 1]  # resumed (their timings kept), not started again
  assert_scores_equal(scores(runs["two_processes"]), scores(workdir), float_atol=0)
  assert records(workdir) == records(runs["two_processes"])
  assert not (workdir / "run.lock").exists()


@pytest.mark.slow
def test_unsupported_feature_is_one_line_on_every_process(tmp_path):
  codes, outputs = finish(start(tmp_path / "w", "--config.prioritization=selective_backprop"))
  assert codes == [2, 2], outputs
  for out in outputs:
    lines = [l for l in out.splitlines() if l.startswith("error: ")]
    assert len(lines) == 1 and "2 processes support the default training only" in lines[0], out
    assert "Traceback" not in out
  assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_a_refusal_of_process_zero_ends_every_process_in_one_line(runs, tmp_path):
  """Process 0 alone checks the workdir; when it refuses (here: another run's config), the
  other process does not wait at a collective: it ends too, in one line, exit 2."""
  workdir = tmp_path / "other"
  workdir.mkdir()
  saved = json.loads((runs["two_processes"] / "config.json").read_text())
  saved["learning_rate"] = 0.5
  (workdir / "config.json").write_text(json.dumps(saved))
  codes, outputs = finish(start(workdir))
  assert codes == [2, 2], outputs
  lines = [[l for l in out.splitlines() if l.startswith("error: ")] for out in outputs]
  assert len(lines[0]) == 1 and "holds a run with a different config" in lines[0][0], outputs[0]
  assert len(lines[1]) == 1 and "process 0 stopped the run" in lines[1][0], outputs[1]
  assert sorted(p.name for p in workdir.iterdir()) == ["config.json"]  # nothing written


@pytest.mark.parametrize("fields,match", [
    ({"num_processes": 2}, "set without distributed.coordinator_address"),
    ({"coordinator_address": "127.0.0.1:1234", "num_processes": 2, "process_id": 2},
     "process_id in \\[0, N\\)"),
    ({"coordinator_address": "127.0.0.1:1234"}, "num_processes=0"),
])
def test_distributed_fields_checked_before_jax_starts(fields, match):
  config = default_config()
  config.distributed.update(fields)
  with pytest.raises(ConfigError, match=match):
    hosts.check_fields(config)


@pytest.mark.parametrize("case,match", [
    ("turnover", "gradient_reduction=fixed_order does not combine with turnover"),
    ("batch_norm", "gradient_reduction=fixed_order takes each device's gradient apart, which "
     "batch norm"),
])
def test_fixed_order_refusals_before_the_workdir(case, match, tmp_path):
  from regularity_jax.training import train_and_evaluate  # pylint: disable=g-import-not-at-top
  from tests import engine_fixtures  # pylint: disable=g-import-not-at-top
  engine_fixtures.write_tiny_npz(tmp_path / "data")
  config = engine_fixtures.tiny_config(tmp_path / "data", gradient_reduction="fixed_order")
  if case == "turnover":
    config.turnover.enabled = True
  else:  # small_cnn has batch norm
    config.model = "small_cnn"
    del config.model_kwargs["hidden"]
    config.model_kwargs.widths = (4,)
  with pytest.raises(ConfigError, match=match):
    train_and_evaluate(config, tmp_path / "w")
  assert not (tmp_path / "w").exists()
