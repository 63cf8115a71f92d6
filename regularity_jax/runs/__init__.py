"""Run directories: config, metrics, per-example scores, plots and checkpoints.

  directory    RunDirectory: config.json, metrics.jsonl, scores.npz/csv; never deletes a run
  checkpoints  Checkpointer: the one module that talks to Orbax
  plots        the PNGs of a run
"""

from regularity_jax.runs.checkpoints import Checkpointer
from regularity_jax.runs.directory import RunDirectory
from regularity_jax.runs.directory import RunDirectoryError

__all__ = ["Checkpointer", "RunDirectory", "RunDirectoryError"]
