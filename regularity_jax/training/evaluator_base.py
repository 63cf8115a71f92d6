"""The interface of an evaluator (`training.evaluators`): a part built from its own block."""

from __future__ import annotations

from typing import Any

import numpy as np

from regularity_jax import registry


class Evaluator:
  """Base class: built from its block (`Evaluator(block, run)`); `applies`, `build`,
  `__call__` (and `scores`)."""
  name = ""
  phase = "passes"  # registry.EVALUATOR_PHASES
  block = ""  # its config block ('' = none)
  every_epoch = False  # False: only at evaluation epochs
  requires = ""  # why it may not apply, for the one-line refusal

  def __init__(self, block=None, run=None):
    self.block_config, self.run = block, run

  @classmethod
  def from_config(cls, config) -> "Evaluator":
    """Built from `config[cls.block]` and the run-wide fields only."""
    view = registry.block_view(config, *((cls.block,) if cls.block else ()))
    return cls(view[cls.block] if cls.block else None, view)

  @classmethod
  def applies(cls, config) -> bool:
    return True

  def build(self, setup, core) -> None:
    pass

  def __call__(self, setup, core, state, record: dict) -> Any:
    raise NotImplementedError

  def scores(self, setup, state, columns: dict) -> dict[str, np.ndarray]:
    """Extra scores.npz columns of one replica (`columns`: those collected so far)."""
    return {}
