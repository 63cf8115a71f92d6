"""What the thin command-line entry points in experiments/ share: quiet logs, one-line errors.

  python -m experiments.main   -> entrypoints.run(training.train_and_evaluate, config, workdir)
  python -m experiments.study  -> entrypoints.run(experiments.studies.run, config, workdir)
  python -m experiments.report -> entrypoints.run(report.write, workdir)
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Any, Callable


def user_errors() -> tuple[type[Exception], ...]:
  """The exceptions that mean bad input (reported as one line), not a bug (a traceback)."""
  from regularity_jax import data, logs, recorder, report, runs, sweeps, training  # pylint: disable=g-import-not-at-top
  return (data.DataError, runs.RunDirectoryError, runs.ScoresFileError, training.ConfigError,
          training.TrainingDiverged, training.OtherProcessFailed, sweeps.StudyError,
          runs.CheckpointFormatError, report.ReportError, logs.LogError,
          recorder.RecorderError)


# OS errors that mean the machine, not the program: a full disk, a read-only or forbidden path.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
_DISK_WORDS = ("No space left on device", "Disk quota exceeded", "Read-only file system",
               "Permission denied")


def disk_error(error: BaseException) -> str | None:
  """One line for a full disk / read-only / forbidden path anywhere in `error`'s chain (Orbax
  and TensorStore wrap the OSError), else None."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in DISK_ERRNOS:
      where = f" {error.filename}" if error.filename else ""
      return f"cannot write{where}: {error.strerror}"
    text = str(error)
    for words in _DISK_WORDS:
      if words in text:
        return f"cannot write: {words} ({text.strip().splitlines()[0][:160]})"
    error = error.__cause__ or error.__context__
  return None


class _Guarded:
  """sys.stdout / sys.stderr of a command: a reader that went away (a closed pipe: `| head`)
  or a stream closed at start (`2>&-`) silences the stream instead of killing the run; the
  files it writes are its result. Everything else is the wrapped stream's."""

  def __init__(self, stream):
    self._stream = stream

  def _silence(self) -> None:
    try:  # later flushes, Python's at exit included, go to /dev/null
      null = os.open(os.devnull, os.O_WRONLY)
      os.dup2(null, self._stream.fileno())
      os.close(null)
    except (AttributeError, OSError, ValueError):
      self._stream = open(os.devnull, "w")  # pylint: disable=consider-using-with

  def write(self, text):
    try:
      return self._stream.write(text)
    except (BrokenPipeError, ValueError):  # ValueError: the stream was closed
      self._silence()
      return len(text)

  def flush(self):
    try:
      self._stream.flush()
    except (BrokenPipeError, ValueError):
      self._silence()

  def __getattr__(self, name):
    return getattr(self._stream, name)


def guard_streams() -> None:
  """Makes a closed or vanished stdout/stderr harmless for the rest of the process (the
  command-line entry points call it first)."""
  for name in ("stdout", "stderr"):
    stream = getattr(sys, name)
    if stream is None:  # closed when the process started (`2>&-`)
      setattr(sys, name, open(os.devnull, "w"))  # pylint: disable=consider-using-with
    elif not isinstance(stream, _Guarded):
      setattr(sys, name, _Guarded(stream))


def run(fn: Callable[..., Any], *args, quiet_logs: bool = True) -> Any:
  """Calls fn(*args); a user error prints `error: <one line>` to stderr and exits with 2 (130
  for Ctrl-C). A full disk or an unwritable path is a user error too: nothing written before
  it is lost, and the same command resumes once there is room."""
  if quiet_logs:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ INFO and WARNING
    from absl import logging  # pylint: disable=g-import-not-at-top
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO.
  from regularity_jax import training  # pylint: disable=g-import-not-at-top
  try:
    return fn(*args)
  except user_errors() as e:
    _fail(str(e), 2)
  except training.Terminated as e:
    _fail(str(e), 143)
  except training.Interrupted as e:
    _fail(str(e), 130)
  except KeyboardInterrupt:
    _fail("interrupted before training started; rerun the same command", 130)
  except Exception as e:  # pylint: disable=broad-except
    message = disk_error(e)
    if message is None:
      raise
    _fail(f"{message}; nothing written before it is lost: free space (or pass a writable "
          "--workdir) and rerun the same command to resume", 2)


def _fail(message: str, code: int) -> None:
  print(f"error: {' '.join(message.split())}", file=sys.stderr, flush=True)
  sys.exit(code)
