"""The one error type of the studies package."""


class StudyError(ValueError):
  """A study config or workdir that cannot be used; the message names the fix (one line)."""
