"""The interface every feature of a run implements: a few hooks, each a no-op by default.

A feature is one optional behaviour (turn-over dropout, static pruning, dynamic reduction,
difficulty weighting, a prioritization method). The loop calls the hooks of the enabled
features in order; a feature keeps its running state in `TrainState.features[name]` (a typed
pytree only its module touches) and builds its jitted programs with `programs.jit`.

  hook              when                                   returns
  validate          before anything runs                   None, or raises ConfigError
  initial_active    data loaded, run directory not claimed the rows epochs may draw from
  initial_weights   likewise                               the per-example loss weights
  init_state        building each replica's state          its typed state, or None
  build             after the setup and core programs      None (jitted programs on self)
  epoch_split       start of each epoch                    the split the epoch trains on
  after_evaluation  after each evaluation                  the new state (and record keys)
  scores            end of the run, per replica            scores.npz columns
  finish            end of the run                         None (files via the run directory)
  final_files       a finished run is checked              the files `finish` writes
"""

from __future__ import annotations

from typing import Any

import numpy as np

from regularity_jax.metrics import difficulty
from regularity_jax.training.errors import ConfigError


class Feature:
  """Base class: every hook does nothing."""
  name = ""
  switch = ""  # the boolean config field that turns the feature on, e.g. "reduction.enabled"

  def __init__(self, config):
    self.config = config

  @classmethod
  def enabled(cls, config) -> bool:
    """Whether `config` turns the feature on (by default: its `switch` field)."""
    node = config
    for part in cls.switch.split("."):
      node = node[part]
    return bool(node)

  @classmethod
  def validate(cls, config) -> None:
    """Raises ConfigError (one line: the problem and the fix) for unusable fields."""

  def initial_active(self, dataset, active: np.ndarray) -> np.ndarray:
    return active

  def initial_weights(self, dataset, weights: np.ndarray) -> np.ndarray:
    return weights

  def init_state(self, setup) -> Any:
    return None

  def build(self, setup, core) -> None:
    """Builds the feature's jitted programs (`programs.jit`); `core` is `programs.Programs`."""

  def epoch_split(self, setup, state, epoch: int, split: dict) -> dict:
    return split

  def after_evaluation(self, setup, state, record: dict, epoch: int, run) -> Any:
    return state

  def scores(self, setup, state) -> dict[str, np.ndarray]:
    return {}

  def finish(self, setup, state, run) -> None:
    pass

  def final_files(self) -> tuple[str, ...]:
    """The files `finish` writes (relative to the run directory): a finished run missing one
    has it written again from its final checkpoint."""
    return ()

  @classmethod
  def replica_clash(cls, config) -> str | None:
    """The field that makes this feature unusable with num_seeds > 1 (per-replica step
    counts or weights would differ), or None."""
    return None


def require_running_score(config, field: str, name: str) -> None:
  """ConfigError unless score `name` can be computed from this run's running state."""
  spec = difficulty.get(name, "train")
  if not spec.running:
    raise ConfigError(f"{field}={name!r} exists only in a finished run's scores.npz, not in the "
                      "running state; pass that file (weighting.scores_path) or choose one of "
                      f"{tuple(s for s in difficulty.TRAIN_SCORES if difficulty.SCORES[s].running)}")
  if spec.source == "turnover" and not config.turnover.enabled:
    raise ConfigError(f"{field}={name!r} needs turn-over dropout: set "
                      "--config.turnover.enabled=True")
  if spec.source != "turnover" and spec.source not in config.tracking.kernels:
    raise ConfigError(f"{field}={name!r} needs the {spec.source!r} kernel: add it to "
                      "--config.tracking.kernels")


def choice(name: str, value, allowed) -> None:
  """ConfigError unless `value` is one of `allowed` (the message names the field)."""
  if value not in allowed:
    raise ConfigError(f"unknown {name} {value!r}; {_did_you_mean(value, allowed)}set "
                      f"--config.{name} to one of {tuple(allowed)}")


def _did_you_mean(value, allowed) -> str:
  """'did you mean "x"? ' for the allowed name closest to `value` (case aside), else ''."""
  import difflib  # pylint: disable=g-import-not-at-top
  names = [str(a) for a in allowed]
  lowered = {n.lower(): n for n in names}
  text = str(value)
  if text.lower() in lowered:
    return f'did you mean "{lowered[text.lower()]}"? '
  close = difflib.get_close_matches(text.lower(), list(lowered), n=1, cutoff=0.6)
  return f'did you mean "{lowered[close[0]]}"? ' if close else ""
