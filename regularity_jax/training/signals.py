"""SIGTERM, what schedulers (SLURM, PBS, LSF, Kubernetes) send before they preempt a job.

Without a handler Python dies at once: no message, and `run.lock` left behind. Inside
`on_sigterm(...)` the signal only sets a flag; the loop calls `check()` at every step
boundary (single process; with several processes at epoch boundaries, process 0's flag
deciding for all, so that no process leaves a collective the others are in) and `check()`
raises `Terminated`, which the loop turns into `errors.Terminated`: the lock is released and
the entry points print one line naming the epoch a rerun resumes from and exit 143. If no
boundary comes within `grace_s` (a long compilation or evaluation), `on_timeout` runs
(it releases the lock and says the same) and the process exits 143 at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Callable

EXIT_CODE = 128 + signal.SIGTERM  # 143, what a shell reports for a process ended by SIGTERM

_requested = threading.Event()


class Terminated(BaseException):
  """Raised by `check()` after a SIGTERM (a BaseException, like KeyboardInterrupt, so that no
  `except Exception` swallows it)."""


def requested() -> bool:
  return _requested.is_set()


def check() -> None:
  """Raises Terminated if a SIGTERM arrived: called at step and epoch boundaries."""
  if _requested.is_set():
    raise Terminated


@contextlib.contextmanager
def on_sigterm(grace_s: float, on_timeout: Callable[[], None]):
  """Within the block SIGTERM sets the flag `check()` reads (main thread only; elsewhere, or
  where SIGTERM is ignored, nothing changes). The previous handler is restored after."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = signal.getsignal(signal.SIGTERM)
  if previous == signal.SIG_IGN:
    yield
    return
  timers = []

  def handler(signum, frame):
    del signum, frame
    if _requested.is_set():
      return
    _requested.set()
    if grace_s > 0:
      timer = threading.Timer(grace_s, _give_up, args=(on_timeout,))
      timer.daemon = True
      timer.start()
      timers.append(timer)

  _requested.clear()
  signal.signal(signal.SIGTERM, handler)
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)
    for timer in timers:
      timer.cancel()
    _requested.clear()


def _give_up(on_timeout: Callable[[], None]) -> None:
  try:
    on_timeout()
  finally:
    os._exit(EXIT_CODE)  # pylint: disable=protected-access
