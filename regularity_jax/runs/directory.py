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
    wall_time.json     wall time of the run, summed over its invocations (resumes; a killed
                       invocation counts up to its last finished epoch)
    data.json          the data the run trained on (`runs.data_record`): resume, rerun and the
                       report command compare it with the data they load
    weighting/train_weight.npy   the last epoch's loss weights (running difficulty weighting),
                       scores.npz's train/weight when the final files are written again
    extensions.json, finished-epoch-<E>/   a run extended by raising num_epochs: its history,
                       and the files it had when it finished E epochs
    reduction/, influence.npz   files of features (dynamic reduction, turn-over influence)
    run.lock           while a run is live: its host, pid, scheduler job id and a heartbeat (a
                       second live run is refused; the lock of a killed run is stale and taken
                       over: its pid is gone on this host, its job is this one requeued, or
                       its heartbeat is older than STALE_S; take_over_lock=True forces it)
    report.lock        while a report is being written (regularity_jax.report): one at a time

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
import re
import socket
import threading
import time
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
                            "allow_changed_model_code", "take_over_lock",
                            "sigterm_grace_s"})

# Fields added to the config after runs were made whose directories must still resume (today's
# main of issue 32, 05bb32c, has none of these), each with the value that reproduces the older
# code's behaviour: a config.json without the field holds the same run as a config with it at
# that value (tests/test_your_model.py resumes a 05bb32c run directory).
ADDED_FIELDS = {"max_wall_time_s": 0.0, "permute_pixels.enabled": False,
                "permute_pixels.seed": 0, "allow_changed_model_code": False,
                "tfds.image_size": [], "epoch_plan": "permutation",
                "features": []}

MODEL_CODE_CHANGES = "model_code_changes.jsonl"


LOCK_NAME = "run.lock"


class RunDirectoryError(ValueError):
  """The workdir cannot be used for this run."""


NAME_MAX = 255  # bytes of one path component on Linux, macOS and Windows file systems
_UNSET_VARIABLE = re.compile(r"\$(\w+|\{[^}]*\})")


def expand_path(path: str | os.PathLike, what: str = "--workdir") -> pathlib.Path:
  """`path` with `~` and environment variables expanded, made absolute (from the current
  directory, once, at start). RunDirectoryError (one line) for a variable that is not set."""
  text = os.fspath(path)
  if isinstance(text, bytes):
    text = os.fsdecode(text)
  expanded = os.path.expandvars(os.path.expanduser(text))
  unset = _UNSET_VARIABLE.search(expanded)
  if unset and unset.group(0) in text:
    raise RunDirectoryError(f"{what}={text} names the environment variable {unset.group(0)}, "
                            "which is not set; set it or pass the path written out")
  return pathlib.Path(os.path.abspath(expanded))


def check_run_path(path: pathlib.Path, what: str = "--workdir") -> None:
  """RunDirectoryError (one line) if `path` cannot become a run directory: a component too
  long or not UTF-8, a dangling symbolic link, or an existing ancestor that is not a folder.
  Writes nothing."""
  text = os.fspath(path)
  try:
    text.encode("utf-8")
  except UnicodeEncodeError:
    raise RunDirectoryError(
        f"{what} {text.encode('utf-8', 'surrogateescape')!r} is not a UTF-8 name (its files "
        "would be unreadable in config.json, the report and the CSVs); pass a --workdir of "
        "UTF-8 characters") from None
  for part in path.parts:
    if len(os.fsencode(part)) > NAME_MAX:
      raise RunDirectoryError(
          f"{what} has a name of {len(os.fsencode(part))} bytes ({part[:40]}...), longer than "
          f"the {NAME_MAX} a file system allows; pass a shorter --workdir")
  if path.is_symlink() and not path.exists():
    raise RunDirectoryError(
        f"{what} {path} is a symbolic link to {os.readlink(path)}, which does not exist; "
        "create its target, remove the link, or pass another --workdir")
  for ancestor in path.parents:
    if ancestor.exists() or ancestor.is_symlink():
      if not ancestor.is_dir():
        kind = ("a dangling symbolic link" if ancestor.is_symlink() and not ancestor.exists()
                else "a file")
        raise RunDirectoryError(
            f"{what} {path} cannot be created: {ancestor} is {kind}, not a folder; pass a "
            "--workdir inside a folder")
      break


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # alive, another user's
    return True
  return True


# The scheduler's id of the job a process belongs to: a requeued job keeps it on its new node.
JOB_ID_VARIABLES = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "JOB_ID", "FLUX_JOB_ID",
                    "COBALT_JOBID", "AWS_BATCH_JOB_ID")
HEARTBEAT_S = 60.0  # a live run rewrites its lock's heartbeat this often
STALE_S = 15 * 60.0  # a lock whose heartbeat is older is a dead run's (on any host)


def job_id() -> str | None:
  """`NAME=value` of this process's scheduler job, None outside a scheduler."""
  for name in JOB_ID_VARIABLES:
    value = os.environ.get(name)
    if value:
      return f"{name}={value}"
  return None


def live_holder(lock: pathlib.Path, now: float | None = None) -> dict[str, Any] | None:
  """The holder of `lock` if it may still be running; None if the lock is stale: its process
  on this host is gone or is this process, it is this scheduler job's on another host (a
  requeue), its heartbeat is older than STALE_S, or it is unreadable (half-written by a kill)."""
  try:
    holder = json.loads(lock.read_text())
    pid, host = int(holder["pid"]), str(holder["host"])
  except (OSError, ValueError, KeyError, TypeError):
    return None
  if host == socket.gethostname():
    return None if pid == os.getpid() or not _pid_alive(pid) else holder
  if holder.get("job") and holder.get("job") == job_id():
    return None  # this job, requeued on another node: its old process is gone
  heartbeat = holder.get("heartbeat")
  if isinstance(heartbeat, (int, float)) and (now or time.time()) - heartbeat > STALE_S:
    return None
  return holder


def _age(holder: Mapping[str, Any], now: float | None = None) -> str:
  heartbeat = holder.get("heartbeat")
  if not isinstance(heartbeat, (int, float)):
    return f"since {holder.get('since', '?')}, no heartbeat"
  seconds = max(0.0, (now or time.time()) - heartbeat)
  return f"last heartbeat {seconds:.0f} s ago"


def _int(value) -> int:
  try:
    return int(value)
  except (TypeError, ValueError):
    return 0


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
    self.path = expand_path(path)
    self.config = _jsonable(config.to_dict() if hasattr(config, "to_dict") else dict(config))
    self.writer = writer
    if not writer:  # another process of a multi-process run: process 0 checked and claimed it
      self.resumed = (self.path / "config.json").exists()
      return
    self.resumed = self._check()
    self.path.mkdir(parents=True, exist_ok=True)
    if lock:
      self.lock()
    try:
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
    except BaseException:
      self.unlock()  # a full disk here: no lock (nor its heartbeat) outlives the refusal
      raise

  @classmethod
  def check(cls, path: str | os.PathLike, config: Mapping[str, Any]) -> bool:
    """Raises RunDirectoryError if `path` cannot hold this run; True if it would resume.
    Writes nothing."""
    probe = cls.__new__(cls)
    probe.path = expand_path(path)
    probe.config = _jsonable(config.to_dict() if hasattr(config, "to_dict") else dict(config))
    return probe._check()

  def _check(self) -> bool:
    self._model_code_change = None
    self.extended_from = None
    config_path = self.path / "config.json"
    check_run_path(self.path)
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
    holder = live_holder(self.path / LOCK_NAME) if (self.path / LOCK_NAME).exists() else None
    if holder is not None and not self.config.get("take_over_lock", False):
      job = f", job {holder['job']}" if holder.get("job") else ""
      raise RunDirectoryError(
          f"workdir {self.path} is in use by a live run (pid {holder['pid']} on "
          f"{holder['host']}{job}, {_age(holder)}); nothing was changed: wait for it to end or "
          "pass another --workdir (if no such run is alive, rerun with "
          "--config.take_over_lock=True)")

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
              "since": datetime.datetime.now().isoformat(timespec="seconds"),
              "job": job_id(), "heartbeat": time.time()}
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
      self._start_heartbeat(holder)
      return
    self._check_unlocked()
    raise RunDirectoryError(f"could not claim {lock}; nothing was changed: rerun the command")

  def _start_heartbeat(self, holder: dict[str, Any]) -> None:
    """Rewrites the lock's heartbeat every HEARTBEAT_S seconds while the run holds it, so that
    a run killed on another host (whose pid cannot be asked) is known dead after STALE_S."""
    self._stop = threading.Event()

    def beat():
      while not self._stop.wait(HEARTBEAT_S):
        holder["heartbeat"] = time.time()
        try:
          _atomic_write(self.path / LOCK_NAME, lambda p: p.write_text(json.dumps(holder)))
        except OSError:
          pass  # a full disk: the next beat tries again

    self._beat = threading.Thread(target=beat, name="run.lock heartbeat", daemon=True)
    self._beat.start()

  def unlock(self) -> None:
    if getattr(self, "_locked", False):
      self._stop.set()
      self._beat.join(timeout=10)  # not mid-write when the lock goes
      self._locked = False
      try:
        (self.path / LOCK_NAME).unlink()
      except FileNotFoundError:
        pass

  def _check_same_config(self, saved: Mapping[str, Any]) -> None:
    from regularity_jax.training import migration  # pylint: disable=g-import-not-at-top
    saved = migration.translate_saved(dict(saved))  # old spellings read as today's
    old = traverse_util.flatten_dict(saved, sep=".")
    new = traverse_util.flatten_dict(self.config, sep=".")
    diff = sorted(k for k in set(old) | set(new)
                  if k not in RESUME_NEUTRAL
                  and old.get(k, ADDED_FIELDS.get(k, "<unset>")) != new.get(k, "<unset>"))
    if not any(k.startswith("resolved_paths.") for k in old):
      # a run of a version that did not record resolved paths: the paths as typed decide
      diff = [k for k in diff if not k.startswith("resolved_paths.")]
    self.extended_from = None
    if "num_epochs" in diff and _int(new.get("num_epochs")) > _int(old.get("num_epochs")):
      # An extension (training.extension checked that no part reads num_epochs).
      self.extended_from = _int(old.get("num_epochs"))
      diff.remove("num_epochs")
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
    """Sets this invocation's wall time so far (setup, compilation, training, evaluation,
    files) in wall_time.json: {"seconds": total over invocations, "invocations": count}. The
    loop calls it after every epoch and at the end, so an invocation killed later (SIGKILL, a
    preemption) counts up to its last finished epoch."""
    if not self.writer:
      return
    path = self.path / "wall_time.json"
    if not hasattr(self, "_wall_before"):  # the totals of the earlier invocations
      try:
        old = json.loads(path.read_text())
        self._wall_before = (float(old["seconds"]), int(old["invocations"]))
      except (OSError, ValueError, KeyError, TypeError):
        self._wall_before = (0.0, 0)
    before, count = self._wall_before
    new = {"seconds": before + seconds, "invocations": count + 1}
    _atomic_write(path, lambda p: p.write_text(json.dumps(new)))

  def final_files(self, config: Mapping[str, Any], feature_files: Iterable[str] = (),
                  plot_names: Iterable[str] = ()) -> list[str]:
    """The files a finished run of `config` holds (relative paths): scores.npz and its CSVs,
    the features' final files, the plots (`plot_names`, with config.plots) and report.html
    (with config.report). wall_time.json, data.json and the reduction's files are not
    among them: the first two are not outputs of the final state, the last are written while
    training."""
    files = ["scores.npz", "scores_train.csv", "scores_test.csv", *feature_files]
    if config.get("plots", True):
      files += [f"plots/{name}" for name in plot_names]
    if config.get("report", True):
      files.append("report.html")
    return files

  def missing(self, files: Iterable[str]) -> list[str]:
    return [f for f in files if not (self.path / f).is_file()]

  EXTENSIONS = "extensions.json"

  def extensions(self) -> list[dict[str, Any]]:
    """The run's history of extensions (`begin_extension`), oldest first."""
    try:
      history = json.loads((self.path / self.EXTENSIONS).read_text())
    except (OSError, ValueError):
      return []
    return history if isinstance(history, list) else []

  def begin_extension(self, finished: bool) -> None:
    """Extends the run from `extended_from` epochs to the config's num_epochs: when it had
    finished (`finished`), its finished files (scores.npz, CSVs, plots, report, the features'
    final files) move to `finished-epoch-<E>/` with a copy of config.json and metrics.jsonl;
    extensions.json records the step; config.json takes the new num_epochs (last, so a kill
    before it repeats the step, which is safe)."""
    if not self.writer or self.extended_from is None:
      return
    old, new = self.extended_from, int(self.config["num_epochs"])
    folder = f"finished-epoch-{old}"
    history = [h for h in self.extensions() if h.get("to") != new or h.get("from") != old]
    history.append({"from": old, "to": new,
                    "time": datetime.datetime.now().isoformat(timespec="seconds"),
                    "finished_files": folder if finished else None})
    _atomic_write(self.path / self.EXTENSIONS,
                  lambda p: p.write_text(json.dumps(history, indent=1)))
    if finished:
      target = self.path / folder
      target.mkdir(exist_ok=True)
      for name in ("config.json", "metrics.jsonl", "wall_time.json", "data.json"):
        if (self.path / name).is_file() and not (target / name).exists():
          (target / name).write_bytes((self.path / name).read_bytes())
      for name in ("scores.npz", "scores_train.csv", "scores_test.csv", "report.html",
                   "influence.npz", "plots"):
        source = self.path / name
        if source.exists() and not (target / name).exists():
          os.replace(source, target / name)
      self.plots_dir.mkdir(exist_ok=True)
    _atomic_write(self.path / "config.json",
                  lambda p: p.write_text(json.dumps(self.config, indent=2, sort_keys=True)))
    self.extended_from = None

  def write_scores(self, arrays: Mapping[str, np.ndarray], provenance: Mapping[str, Any],
                   splits: Iterable[str] = ("train", "test"),
                   only: Iterable[str] | None = None) -> None:
    """Writes scores.npz with its provenance (`scores_file`) and one CSV per split (columns:
    every `<split>/<key>` of `arrays`); `only`: just those of these files (a finished run's
    missing files written again)."""
    if not self.writer:
      return
    import pandas as pd  # The CSVs are for people; the npz is the record.
    only = None if only is None else set(only)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    if only is None or "scores.npz" in only:
      scores_file.write(self.scores_path, arrays, provenance)
    for split in splits:
      if only is not None and f"scores_{split}.csv" not in only:
        continue
      cols = {k.split("/", 1)[1]: v for k, v in arrays.items()
              if k.startswith(f"{split}/") and v.ndim == 1}  # [N, C] arrays stay in the npz
      if not cols:
        continue
      frame = pd.DataFrame(cols).set_index("example_id")
      _atomic_write(self.path / f"scores_{split}.csv", lambda p: frame.to_csv(p))
