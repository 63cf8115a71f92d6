"""Errors that reach the user as one line naming the problem and the fix."""


class ConfigError(ValueError):
  """A config field has a value the engine cannot use."""


class TrainingDiverged(RuntimeError):
  """The loss became NaN or infinite; the last good checkpoint is kept."""


class Interrupted(Exception):
  """Ctrl-C during training; the message names the epoch and how to resume."""


class OtherProcessFailed(RuntimeError):
  """In a multi-process run: process 0 failed a step it does alone (its own error says why)."""


class Terminated(Exception):
  """SIGTERM during training (a scheduler's preemption notice); the message names the epoch a
  rerun resumes from. Exit code 143."""
