"""Checkpointing through Orbax: the only module that talks to it.

A checkpoint is the whole TrainState at the end of an epoch, saved synchronously under
`checkpoints/<epoch>`; Orbax writes to a temporary folder and renames it, so a run killed
mid-save keeps its previous checkpoint. The last `max_to_keep` are kept.
"""

from __future__ import annotations

import os

import jax
import numpy as np
import orbax.checkpoint as ocp


class Checkpointer:

  def __init__(self, directory: str | os.PathLike, max_to_keep: int = 2):
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           enable_async_checkpointing=False)
    self._manager = ocp.CheckpointManager(os.path.abspath(directory), options=options)

  def latest_epoch(self) -> int | None:
    return self._manager.latest_step()

  def save(self, epoch: int, state) -> None:
    self._manager.save(epoch, args=ocp.args.StandardSave(state), force=True)
    self._manager.wait_until_finished()

  def restore(self, target, epoch: int | None = None):
    """Restores into the structure, dtypes and shardings of `target` (a TrainState)."""
    epoch = self.latest_epoch() if epoch is None else epoch
    return self._manager.restore(epoch, args=ocp.args.StandardRestore(target))

  def restore_or(self, initial):
    """(the latest checkpoint restored into `initial`'s structure, its epoch), or
    (`initial`, 0) when there is none."""
    epoch = self.latest_epoch()
    if epoch is None:
      return initial, 0
    state = self.restore(initial, epoch)
    return state, int(np.ravel(jax.device_get(state.epoch))[0])

  def close(self) -> None:
    self._manager.close()
