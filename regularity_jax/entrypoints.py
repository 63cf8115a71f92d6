"""What the thin command-line entry points in experiments/ share: quiet logs, one-line errors.

  python -m experiments.main   -> entrypoints.run(training.train_and_evaluate, config, workdir)
  python -m experiments.study  -> entrypoints.run(experiments.studies.run, config, workdir)
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable


def user_errors() -> tuple[type[Exception], ...]:
  """The exceptions that mean bad input (reported as one line), not a bug (a traceback)."""
  from regularity_jax import data, runs, sweeps, training  # pylint: disable=g-import-not-at-top
  return (data.DataError, runs.RunDirectoryError, runs.ScoresFileError, training.ConfigError,
          training.TrainingDiverged, sweeps.StudyError)


def run(fn: Callable[..., Any], *args, quiet_logs: bool = True) -> Any:
  """Calls fn(*args); a user error prints `error: <one line>` to stderr and exits with 2."""
  if quiet_logs:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ INFO and WARNING
    from absl import logging  # pylint: disable=g-import-not-at-top
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO.
  try:
    return fn(*args)
  except user_errors() as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
