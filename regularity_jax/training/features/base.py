"""The interface every feature of a run implements: a few hooks, each a no-op by default.

A feature is one optional behaviour (turn-over dropout, static pruning, dynamic reduction,
difficulty weighting, a prioritization method): a part (`regularity_jax.registry`,
docs/parts.md). It is built from its VIEW of the config (`view`): its own block (`block`), the
run-wide fields (`registry.RUN_WIDE`) and the few other fields it declares in `reads`, nothing
else; `self.config` is that view, and its `validate` and `enabled` see only that view too.
The loop calls the hooks of the enabled features in the order of their declared `phase`
(`registry.FEATURE_PHASES`), never in config order; a feature keeps its running state in
`TrainState.features[name]` (a typed pytree only its module touches), builds its jitted
programs with `programs.jit`, may bring evaluators (`evaluators`) and options of the core
programs (`program_options`).

  hook              when                                   returns
  validate          before anything runs                   None, or raises ConfigError
  change_dataset    loading the data (subset, corrupted)   the dataset the run trains on
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

from regularity_jax import registry
from regularity_jax.metrics import difficulty
from regularity_jax.training.errors import ConfigError


class Feature:
  """Base class: every hook does nothing."""
  name = ""
  phase = ""  # one of registry.FEATURE_PHASES
  block = ""  # its own config block, e.g. "reduction"
  reads: tuple[str, ...] = ()  # top-level fields outside its block it reads (docs/parts.md)
  switch = ""  # the boolean config field that turns the feature on, e.g. "reduction.enabled"

  def __init__(self, config):
    self.config = config  # its view (`view`)

  @classmethod
  def view(cls, config, strict: bool = False):
    """The part of `config` this feature may read: its block, `reads`, the run-wide fields."""
    return registry.block_view(config, *((cls.block,) if cls.block else ()), *cls.reads,
                               strict=strict)

  @classmethod
  def from_config(cls, config) -> "Feature":
    return cls(cls.view(config))

  def program_options(self) -> dict[str, Any]:
    """Keyword options of the core programs (`programs.Programs.build`) this feature needs."""
    return {}

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

  def change_dataset(self, dataset):
    """The dataset this feature trains on (`training.setup.load_data`, phase order)."""
    return dataset

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
  def needs(cls, config) -> list[tuple[str, str, str]]:
    """What this feature, when enabled, needs of other parts: (kind, name, one-line message)
    with kind "statistic" (a `tracking.kernels` entry) or "feature" (an enabled feature's
    name); `features.validate` checks them on the assembled config."""
    return []

  @classmethod
  def replica_clash(cls, config) -> str | None:
    """The field that makes this feature unusable with num_seeds > 1 (per-replica step
    counts or weights would differ), or None."""
    return None


def running_score_needs(field: str, name: str) -> list[tuple[str, str, str]]:
  """What score `name` needs to be computed from this run's running state (`Feature.needs`);
  ConfigError when no running state has it."""
  spec = difficulty.get(name, "train")
  if not spec.running:
    raise ConfigError(f"{field}={name!r} exists only in a finished run's scores.npz, not in the "
                      "running state; pass that file (weighting.scores_path) or choose one of "
                      f"{tuple(s for s in difficulty.TRAIN_SCORES if difficulty.SCORES[s].running)}")
  if spec.source == "turnover":
    return [("feature", "turnover", f"{field}={name!r} needs turn-over dropout: set "
             "--config.turnover.enabled=True")]
  return [statistic_need(spec.source, f"{field}={name!r}")]


def statistic_need(kernel: str, who: str, what: str = "") -> tuple[str, str, str]:
  """A `Feature.needs` entry: `who` needs the statistic `kernel` tracked."""
  return ("statistic", kernel, f"{who} needs {what}the {kernel!r} kernel: add it to "
          "--config.tracking.kernels")


def choice(name: str, value, allowed) -> None:
  """ConfigError unless `value` is one of `allowed` (the message names the field)."""
  if value not in allowed:
    raise ConfigError(f"unknown {name} {value!r}; {_did_you_mean(value, allowed)}set "
                      f"--config.{name} to one of {tuple(allowed)}")


_did_you_mean = registry.did_you_mean
