"""The run directory of one training run.

  workdir/
    config.json        the full config; a rerun must match it (then it resumes)
    metrics.jsonl      one JSON object per epoch
    scores.npz         per-example statistics keyed by example id, with provenance
                       (regularity_jax.runs.scores_file documents the schema)
    scores_train.csv   the train rows of scores.npz, one row per example id
    scores_test.csv    the test rows
    plots/*.png
    report.html        the run report (regularity_jax.report); plots/grids/*.png its grids
    checkpoints/       Orbax (regularity_jax.runs.checkpoints)
    wall_time.json     wall time of the run, summed over its invocations (resumes)
    reduction/, influence.npz   files of features (dynamic reduction, turn-over influence)
    run.lock           while a run is live: its host and pid (a second live run is refused; the
                       lock of a killed run is recognised as stale and taken over)

Every file a run writes goes through this class, except report.html and plots/grids/ (written by
regularity_jax.report, which also serves run directories that finished long ago). In a
multi-process run (`training.hosts`) process 0 opens it as the writer; the other processes open
it with `writer=False`: no checks, no lock, and every write method does nothing there, so each
file is written once.

Nothing here ever deletes or overwrites another run: a workdir that holds a run with a
different config, or files that are not a run, is refused with a message.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import socket
from typing import Any, Iterable, Mapping

from flax import traverse_util
import numpy as np

from regularity_jax import notices
from regularity_jax.runs import scores_file

# Fields that do not change results, so a run may resume with other values.
# max_wall_time_s only decides where a call stops; the resumed run is the uninterrupted one.
RESUME_NEUTRAL = frozenset({"progress_bar", "plots", "report", "report_k", "num_devices",
                            "keep_checkpoints", "max_wall_time_s", "scan_epoch",
                            "input_pipeline", "stream.threads", "stream.prefetch",
                            "distributed.coordinator_address",
                            "distributed.num_processes", "distributed.process_id",
                            "distributed.enabled", "distributed.initialization_timeout",
                            "allow_changed_model_code"})

# Fields added to the config after runs were made whose directories must still resume (today's
# main of issue 32, 05bb32c, has none of these), each with the value that reproduces the older
# code's behaviour: a config.json without the field holds the same run as a config with it at
# that value (tests/test_your_model.py resumes a 05bb32c run directory).
ADDED_FIELDS = {"max_wall_time_s": 0.0, "permute_pixels.enabled": False,
                "permute_pixels.seed": 0, "allow_changed_model_code": False}

MODEL_CODE_CHANGES = "model_code_changes.jsonl"


LOCK_NAME = "run.lock"


class RunDirectoryError(ValueError):
  """The workdir cannot be used for this run."""


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # alive, another user's
    return True
  return True


def _live_holder(lock: pathlib.Path) -> dict[str, Any] | None:
  """The holder of `lock` if it may still be running; None if the lock is stale (its process
  on this host is gone, or it is this process's own) or unreadable (half-written by a kill)."""
  try:
    holder = json.loads(lock.read_text())
    pid, host = int(holder["pid"]), str(holder["host"])
  except (OSError, ValueError, KeyError, TypeError):
    return None
  if host == socket.gethostname() and (pid == os.getpid() or not _pid_alive(pid)):
    return None
  return holder


def _jsonable(value):
  if isinstance(value, Mapping):
    return {str(k): _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, np.generic):
    return value.item()
  return value


def _atomic_write(path: pathlib.Path, write) -> None:
  tmp = path.with_name(path.name + ".tmp")
  write(tmp)
  os.replace(tmp, path)


class RunDirectory:
  """Opens (creating, or checking and resuming) the run directory at `path` for `config`.

  `RunDirectory.check(path, config)` runs the same checks without writing anything, so that
  a run can validate its inputs (data, score files) before it claims the directory.
  """

  def __init__(self, path: str | os.PathLike, config: Mapping[str, Any], *, lock: bool = False,
               writer: bool = True):
    self.path = pathlib.Path(path)
    self.config = _jsonable(config.to_dict() if hasattr(config, "to_dict") else dict(config))
    self.writer = writer
    if not writer:  # another process of a multi-process run: process 0 checked and claimed it
      self.resumed = (self.path / "config.json").exists()
      return
    self.resumed = self._check()
    self.path.mkdir(parents=True, exist_ok=True)
    if lock:
      self.lock()
    if self.resumed and self._model_code_change:  # allowed: recorded, config.json names the new
      old = self._model_code_change
      note = {"time": datetime.datetime.now().isoformat(timespec="seconds"),
              "last_epoch_recorded": max([r["epoch"] for r in self.read_metrics()], default=0),
              "old": old, "new": self.config.get("model_source", {})}
      with open(self.path / MODEL_CODE_CHANGES, "a") as f:
        f.write(json.dumps(note, sort_keys=True) + "\n")
    if not self.resumed or self._model_code_change:
      _atomic_write(self.path / "config.json",
                    lambda p: p.write_text(json.dumps(self.config, indent=2, sort_keys=True)))
    self.plots_dir.mkdir(exist_ok=True)

  @classmethod
  def check(cls, path: str | os.PathLike, config: Mapping[str, Any]) -> bool:
    """Raises RunDirectoryError if `path` cannot hold this run; True if it would resume.
    Writes nothing."""
    probe = cls.__new__(cls)
    probe.path = pathlib.Path(path)
    probe.config = _jsonable(config.to_dict() if hasattr(config, "to_dict") else dict(config))
    return probe._check()

  def _check(self) -> bool:
    self._model_code_change = None
    config_path = self.path / "config.json"
    if self.path.exists() and not self.path.is_dir():
      raise RunDirectoryError(f"workdir {self.path} is a file; pass a directory as --workdir")
    self._check_unlocked()
    if config_path.exists():
      self._check_same_config(self._read_config(config_path))
      return True
    if self.path.exists() and any(self.path.iterdir()):
      raise RunDirectoryError(
          f"workdir {self.path} is not empty and holds no config.json, so it is not a "
          "regularity_jax run; nothing was changed: pass a new or empty --workdir")
    return False

  def _check_unlocked(self) -> None:
    holder = _live_holder(self.path / LOCK_NAME) if (self.path / LOCK_NAME).exists() else None
    if holder is not None:
      raise RunDirectoryError(
          f"workdir {self.path} is in use by a live run (pid {holder['pid']} on "
          f"{holder['host']}, since {holder.get('since', '?')}); nothing was changed: wait for "
          f"it to end or pass another --workdir (if no such run is alive, delete "
          f"{self.path / LOCK_NAME})")

  def _read_config(self, path: pathlib.Path) -> Mapping[str, Any]:
    try:
      saved = json.loads(path.read_text())
    except (OSError, ValueError) as e:
      raise RunDirectoryError(
          f"{path} cannot be read ({type(e).__name__}: {str(e)[:100]}), so this run cannot be "
          "checked against it; nothing was changed: repair that file (it is the config of the "
          "run in that workdir) or pass a new --workdir") from None
    if not isinstance(saved, dict):
      raise RunDirectoryError(f"{path} does not hold a config (a JSON object); nothing was "
                              "changed: repair that file or pass a new --workdir")
    return saved

  def lock(self) -> None:
    """Claims the workdir for this process (`run.lock`); RunDirectoryError if a live run holds
    it. A stale lock (a killed run's) is taken over. `unlock` releases it."""
    if not self.writer:
      return
    lock = self.path / LOCK_NAME
    holder = {"pid": os.getpid(), "host": socket.gethostname(),
              "since": datetime.datetime.now().isoformat(timespec="seconds")}
    for _ in range(2):
      try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        self._check_unlocked()  # raises if live
        try:
          lock.unlink()  # stale: a killed run's
        except FileNotFoundError:
          pass
        continue
      with os.fdopen(fd, "w") as f:
        f.write(json.dumps(holder))
      self._locked = True
      return
    self._check_unlocked()
    raise RunDirectoryError(f"could not claim {lock}; nothing was changed: rerun the command")

  def unlock(self) -> None:
    if getattr(self, "_locked", False):
      self._locked = False
      try:
        (self.path / LOCK_NAME).unlink()
      except FileNotFoundError:
        pass

  def _check_same_config(self, saved: Mapping[str, Any]) -> None:
    old = traverse_util.flatten_dict(saved, sep=".")
    new = traverse_util.flatten_dict(self.config, sep=".")
    diff = sorted(k for k in set(old) | set(new)
                  if k not in RESUME_NEUTRAL
                  and old.get(k, ADDED_FIELDS.get(k, "<unset>")) != new.get(k, "<unset>"))
    if "model_source.sha256" in diff and "model_source.sha256" in old:
      if not new.get("allow_changed_model_code"):
        raise RunDirectoryError(
            f"workdir {self.path} was trained with model code "
            f"{old.get('model_source.resolved')} of sha256 "
            f"{str(old['model_source.sha256'])[:12]}, which is now "
            f"{str(new.get('model_source.sha256', '<none>'))[:12]} "
            f"({new.get('model_source.resolved', new.get('model'))}); nothing was changed: "
            "restore that code to resume, pass a new --workdir, or set "
            "--config.allow_changed_model_code=True to go on with the new code (recorded in "
            f"{MODEL_CODE_CHANGES})")
      self._model_code_change = saved.get("model_source")
      diff = [k for k in diff if not k.startswith("model_source.")]
    if diff:
      shown = ", ".join(f"{k}: {old.get(k, '<unset>')!r} -> {new.get(k, '<unset>')!r}"
                        for k in diff[:4])
      more = f" (and {len(diff) - 4} more)" if len(diff) > 4 else ""
      raise RunDirectoryError(
          f"workdir {self.path} holds a run with a different config ({shown}{more}); nothing "
          "was changed: pass a new --workdir, or the same config to resume that run")

  @property
  def metrics_path(self) -> pathlib.Path:
    return self.path / "metrics.jsonl"

  @property
  def scores_path(self) -> pathlib.Path:
    return self.path / "scores.npz"

  @property
  def plots_dir(self) -> pathlib.Path:
    return self.path / "plots"

  @property
  def checkpoint_dir(self) -> pathlib.Path:
    return self.path / "checkpoints"

  def read_metrics(self) -> list[dict[str, Any]]:
    """The records of metrics.jsonl. A last line cut by a kill or a full disk is dropped with
    a warning (its epoch is rerun from the checkpoint before it); a damaged line before the
    last is a RunDirectoryError naming the file and the line."""
    if not self.metrics_path.exists():
      return []
    lines = self.metrics_path.read_text(errors="replace").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
      if not line.strip():
        continue
      try:
        record = json.loads(line)
        if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
          raise ValueError("not a record with an integer epoch")
      except ValueError as e:
        if number == len(lines):
          if self.writer:  # said once, by the process that writes the file
            notices.warn(f"the last line of {self.metrics_path} is incomplete ({e}); it is "
                         "dropped and its epoch is trained again")
          break
        raise RunDirectoryError(
            f"{self.metrics_path} line {number} is damaged ({str(e)[:80]}); nothing was "
            "changed: repair or remove that line (later epochs are then trained again), or "
            "pass a new --workdir") from None
      records.append(record)
    return records

  def keep_metrics_through(self, epoch: int, records: list[dict[str, Any]]
                           ) -> list[dict[str, Any]]:
    """On resume: keeps the `records` (as `read_metrics` gave them) of epochs up to `epoch`,
    the restored checkpoint's, in metrics.jsonl; later epochs are rerun. Returns the kept."""
    kept = [r for r in records if r["epoch"] <= epoch]
    if not self.writer:
      return kept
    _atomic_write(self.metrics_path,
                  lambda p: p.write_text("".join(json.dumps(r) + "\n" for r in kept)))
    return kept

  def append_metrics(self, record: Mapping[str, Any]) -> None:
    if not self.writer:
      return
    with self.metrics_path.open("a") as f:
      f.write(json.dumps(_jsonable(record)) + "\n")

  def _file(self, relative: str) -> pathlib.Path:
    path = self.path / relative
    if self.writer:
      path.parent.mkdir(parents=True, exist_ok=True)
    return path

  def save_array(self, relative: str, array: np.ndarray) -> pathlib.Path:
    """Writes one array (.npy) at `relative` inside the run directory, atomically."""
    path = self._file(relative)
    if not self.writer:
      return path
    _atomic_write(path, lambda p: np.save(p.open("wb"), np.asarray(array)))
    return path

  def save_npz(self, relative: str, arrays: Mapping[str, np.ndarray]) -> pathlib.Path:
    """Writes arrays (.npz) at `relative` inside the run directory, atomically."""
    path = self._file(relative)
    if not self.writer:
      return path
    _atomic_write(path, lambda p: np.savez(p.open("wb"), **arrays))
    return path

  def record_wall_time(self, seconds: float) -> None:
    """Adds this invocation's wall time (setup, compilation, training, evaluation, files) to
    wall_time.json: {"seconds": total over invocations, "invocations": count}."""
    if not self.writer:
      return
    path = self.path / "wall_time.json"
    old = json.loads(path.read_text()) if path.is_file() else {"seconds": 0.0, "invocations": 0}
    new = {"seconds": old["seconds"] + seconds, "invocations": old["invocations"] + 1}
    _atomic_write(path, lambda p: p.write_text(json.dumps(new)))

  def write_scores(self, arrays: Mapping[str, np.ndarray], provenance: Mapping[str, Any],
                   splits: Iterable[str] = ("train", "test")) -> None:
    """Writes scores.npz with its provenance (`scores_file`) and one CSV per split (columns:
    every `<split>/<key>` of `arrays`)."""
    if not self.writer:
      return
    import pandas as pd  # The CSVs are for people; the npz is the record.
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    scores_file.write(self.scores_path, arrays, provenance)
    for split in splits:
      cols = {k.split("/", 1)[1]: v for k, v in arrays.items()
              if k.startswith(f"{split}/") and v.ndim == 1}  # [N, C] arrays stay in the npz
      if not cols:
        continue
      frame = pd.DataFrame(cols).set_index("example_id")
      _atomic_write(self.path / f"scores_{split}.csv", lambda p: frame.to_csv(p))
