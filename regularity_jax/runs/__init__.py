"""Run directories: config, metrics, per-example scores, plots and checkpoints.

  directory    RunDirectory: config.json, metrics.jsonl, scores.npz/csv; never deletes a run
  scores_file  the scores.npz schema, its provenance, and reading another run's scores safely
  checkpoints  Checkpointer: the one module that talks to Orbax
  plots        the PNGs of a run
"""

from regularity_jax.runs.checkpoints import Checkpointer
from regularity_jax.runs.checkpoints import CheckpointFormatError
from regularity_jax.runs.directory import RunDirectory
from regularity_jax.runs.directory import RunDirectoryError
from regularity_jax.runs import scores_file
from regularity_jax.runs.scores_file import ScoresFileError

__all__ = ["Checkpointer", "CheckpointFormatError", "RunDirectory", "RunDirectoryError", "ScoresFileError", "scores_file"]
