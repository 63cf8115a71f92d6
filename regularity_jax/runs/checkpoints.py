"""Checkpointing through Orbax: the only module that talks to it.

A checkpoint is the whole TrainState at the end of an epoch, saved synchronously under
`checkpoints/<epoch>`; Orbax writes to a temporary folder and renames it, so a run killed
mid-save keeps its previous checkpoint. The last `max_to_keep` are kept.

Resuming takes the newest intact checkpoint. One that cannot be read (truncated, bit-flipped,
an empty `checkpoints/<epoch>` folder) is renamed `checkpoints/damaged-<epoch>` (kept, never
deleted; Orbax ignores the name) with a one-line warning, and the next older one is tried. One
whose tree of arrays differs from this version's TrainState (written by another version of
regularity_jax) is not damage: it is refused in one line naming both formats.

A SIGTERM mid-epoch (single process) saves a mid-epoch checkpoint `checkpoints/partial-<E>-<R>`:
epoch E+1 after R of its steps (`training.epoch.partial_tree`: the state, the epoch's carry and
plan). Orbax ignores the name; a resume whose metrics.jsonl ends at epoch E continues from it
(`restore_partial`). It is removed once a newer one or a checkpoint of a later epoch is saved;
one that cannot be read is kept as `damaged-partial-<E>-<R>` with a one-line warning.

Several processes (`training.hosts`): every process calls `save` and `restore_or` at the same
point, as Orbax's barriers require, and writes its own shards of the state; process 0 (Orbax's
primary host) writes the digests and alone decides which checkpoint a resume takes (checking
digests and formats, setting aside what it cannot use); then every process restores that one.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib

import jax
import numpy as np
import orbax.checkpoint as ocp

from regularity_jax import notices


class CheckpointFormatError(ValueError):
  """A checkpoint holds another state format than this version's TrainState."""


# The state's leaves each version added, newest first: (the suffix of the leaves' paths, the
# version that added them, what it added): a checkpoint without them was written by a version
# before it, and its refusal names that version.
FORMAT_CHANGES = (
    ("first_forgotten", "8a5a0b2",
     "issue 30 added forgetting.first_forgotten to the state; e.g. 05bb32c, today's main of "
     "issue 32"),
)


def _older_version(only_saved, only_here) -> str:
  """'written by a version before X (...)' if the missing leaves are those X added, else ''."""
  for suffix, version, what in FORMAT_CHANGES:
    if only_here and not only_saved and all(p[-1] == suffix for p in only_here):
      return (f"was written by a version of regularity_jax before {version} ({what}), whose "
              f"scores cannot be continued bit for bit; resume it with that version (git "
              f"worktree add DIR <its commit>) or pass a new --workdir to start again; its "
              f"scores.npz stays a valid --config.pruning.scores_path")
  return ""


def _primary() -> bool:
  return jax.process_index() == 0


def _broadcast(value: int) -> int:
  """Process 0's integer on every process."""
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def _restored(state) -> tuple:
  """(a restored TrainState, its epoch)."""
  return state, int(np.ravel(jax.device_get(state.epoch))[0])


def _path_names(path) -> tuple[str, ...]:
  names = []
  for key in path:
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        names.append(str(getattr(key, attr)))
        break
    else:
      names.append(str(key))
  return tuple(names)


def _layout(tree) -> dict[tuple[str, ...], tuple[int, ...]]:
  """{path of names: shape} of every array leaf of a state or of Orbax's tree metadata."""
  leaves = jax.tree_util.tree_flatten_with_path(
      tree, is_leaf=lambda x: hasattr(x, "shape") and not isinstance(x, dict))[0]
  return {_path_names(p): tuple(getattr(leaf, "shape", ())) for p, leaf in leaves}


def file_digests(directory: pathlib.Path) -> dict[str, str]:
  """{relative path: sha256} of every file under `directory` (a saved checkpoint)."""
  digests = {}
  for path in sorted(p for p in directory.rglob("*") if p.is_file()):
    h = hashlib.sha256()
    with path.open("rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
    digests[str(path.relative_to(directory))] = h.hexdigest()
  return digests


class Checkpointer:

  def __init__(self, directory: str | os.PathLike, max_to_keep: int = 2):
    self.directory = pathlib.Path(os.path.abspath(directory))
    self._max_to_keep = max_to_keep
    self._manager = self._open()

  def _open(self):
    options = ocp.CheckpointManagerOptions(max_to_keep=self._max_to_keep, create=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(self.directory, options=options,
                                 item_handlers=ocp.StandardCheckpointHandler())

  def latest_epoch(self) -> int | None:
    return self._manager.latest_step()

  def _digest_path(self, epoch: int) -> pathlib.Path:
    return self.directory / f"digest-{epoch}.json"

  def save(self, epoch: int, state) -> None:
    """Saves `state` as checkpoint `epoch`, with the sha256 of each of its files beside it:
    damage (a truncated file, a flipped bit that Orbax would read back without complaint, an
    emptied folder) is found before Orbax reads anything."""
    self._manager.save(epoch, args=ocp.args.StandardSave(state), force=True)
    self._manager.wait_until_finished()
    if not _primary():
      return
    self._drop_partials(before_epoch=epoch)
    path, tmp = self._digest_path(epoch), self.directory / f".digest-{epoch}.json.tmp"
    tmp.write_text(json.dumps({"epoch": epoch,
                               "files": file_digests(self.directory / str(epoch))}))
    os.replace(tmp, path)
    kept = {str(e) for e in self._manager.all_steps()}
    for old in self.directory.glob("digest-*.json"):  # of checkpoints Orbax rotated out
      if old.stem.split("-", 1)[1] not in kept:
        old.unlink()

  def _partials(self) -> list[tuple[int, int, pathlib.Path]]:
    """(epoch, rows, folder) of every mid-epoch checkpoint, oldest first."""
    found = []
    for path in self.directory.glob("partial-*-*"):
      parts = path.name.split("-")
      if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit() and path.is_dir():
        found.append((int(parts[1]), int(parts[2]), path))
    return sorted(found)

  def _drop_partials(self, keep=None, before_epoch: int | None = None) -> None:
    """Removes mid-epoch checkpoints a newer save supersedes (all but `keep`; or those of
    epochs before `before_epoch`)."""
    import shutil  # pylint: disable=g-import-not-at-top
    for epoch, _, path in self._partials():
      if path != keep and (before_epoch is None or epoch < before_epoch):
        shutil.rmtree(path, ignore_errors=True)

  def save_partial(self, epoch: int, rows: int, tree) -> pathlib.Path:
    """Saves a mid-epoch checkpoint: `tree` (`training.epoch.partial_tree`) after `rows` steps
    of the epoch that follows epoch `epoch`; older mid-epoch checkpoints are then removed.
    Orbax writes a temporary folder and renames it: a save cut short leaves none."""
    path = self.directory / f"partial-{epoch}-{rows}"
    with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as checkpointer:
      checkpointer.save(path, args=ocp.args.StandardSave(tree), force=True)
    self._drop_partials(keep=path)
    return path

  def restore_partial(self, epoch: int, template):
    """The newest mid-epoch checkpoint of the epoch after `epoch`, restored into `template`'s
    structure and shardings (`template`: the tree, or a function making it), or None when there is none (or it cannot be read: kept as
    damaged-partial-..., with a warning)."""
    partials = [p for e, _, p in self._partials() if e == epoch]
    if not partials:
      return None
    path = partials[-1]
    if callable(template):
      template = template()
    try:
      with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as checkpointer:
        return checkpointer.restore(path, args=ocp.args.StandardRestore(template))
    except Exception as e:  # pylint: disable=broad-except  # damage: Orbax raises many kinds
      target = path.with_name(f"damaged-{path.name}")
      os.replace(path, target)
      cause = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
      notices.warn(f"mid-epoch checkpoint {path} cannot be read ({type(e).__name__}: {cause}); "
                   f"it is kept as {target.name} and the run resumes from the checkpoint of "
                   f"epoch {epoch} or before")
      return None

  def _check_files(self, epoch: int) -> None:
    """ValueError if checkpoint `epoch`'s files differ from those recorded when it was saved."""
    path = self._digest_path(epoch)
    if not path.exists():  # written by a version without digests: Orbax's checks only
      return
    expected = json.loads(path.read_text())["files"]
    found = file_digests(self.directory / str(epoch))
    missing = sorted(set(expected) - set(found))
    changed = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    if missing or changed:
      raise ValueError(f"{len(missing)} of its files are missing and {len(changed)} differ from "
                       f"{path.name} (e.g. {(missing or changed)[0]})")

  def restore(self, target, epoch: int | None = None):
    """Restores into the structure, dtypes and shardings of `target` (a TrainState)."""
    epoch = self.latest_epoch() if epoch is None else epoch
    return self._manager.restore(epoch, args=ocp.args.StandardRestore(target))

  def _check_format(self, target, epoch: int) -> None:
    """CheckpointFormatError if checkpoint `epoch` is readable but of another state layout."""
    saved = _layout(self._manager.item_metadata(epoch).tree)
    expected = _layout(target)
    if saved != expected:
      older = _older_version(set(saved) - set(expected), set(expected) - set(saved))
      if older:
        raise CheckpointFormatError(f"{self.directory / str(epoch)} {older}")
      only_saved = sorted(".".join(p) for p in set(saved) - set(expected))[:3]
      only_here = sorted(".".join(p) for p in set(expected) - set(saved))[:3]
      reshaped = sorted(".".join(p) for p in set(saved) & set(expected)
                        if saved[p] != expected[p])[:3]
      raise CheckpointFormatError(
          f"{self.directory / str(epoch)} holds another state format than this version of "
          f"regularity_jax (only there: {only_saved or '-'}; only here: {only_here or '-'}; "
          f"other shapes: {reshaped or '-'}): it is not damaged; resume it with the version that "
          "wrote it, or pass a new --workdir to start again")

  def restore_or(self, initial, at_most: int | None = None):
    """(the newest intact checkpoint restored into `initial`'s structure, its epoch), or
    (`initial`, 0) when there is none. `at_most`: ignore checkpoints after that epoch."""
    if jax.process_count() > 1:
      return self._restore_or_together(initial, at_most)
    while epoch := self._pick(initial, at_most):
      try:
        return _restored(self.restore(initial, epoch))
      except Exception as e:  # pylint: disable=broad-except  # damage: Orbax raises many kinds
        self._set_aside(epoch, e)
    return initial, 0

  def _restore_or_together(self, initial, at_most: int | None):
    """`restore_or` with several processes: process 0 picks the epoch from the digests and
    formats (a checkpoint Orbax then cannot read raises instead of being set aside)."""
    picked, error = 0, None
    if _primary():
      try:
        picked = self._pick(initial, at_most, reopen=False)
      except CheckpointFormatError as e:
        picked, error = -1, e
    picked = _broadcast(picked)
    self._manager.close()  # every process reopens: Orbax sees process 0's renames
    self._manager = self._open()
    if picked < 0:
      raise error or CheckpointFormatError(
          f"process 0 refused the checkpoints in {self.directory} (its error line says why)")
    if picked == 0:
      return initial, 0
    return _restored(self.restore(initial, picked))

  def _pick(self, initial, at_most: int | None, reopen: bool = True) -> int:
    """The newest checkpoint whose digests and format match (0: none); the newer ones are set
    aside (`reopen` as in `_set_aside`)."""
    for epoch in sorted(self._manager.all_steps(), reverse=True):
      if at_most is not None and epoch > at_most:
        self._set_aside(epoch, None, prefix="superseded",
                        why=f"metrics.jsonl ends at epoch {at_most}", reopen=reopen)
        continue
      try:
        self._check_files(epoch)
        self._check_format(initial, epoch)
      except CheckpointFormatError:
        raise
      except Exception as e:  # pylint: disable=broad-except  # damage: Orbax raises many kinds
        self._set_aside(epoch, e, reopen=reopen)
        continue
      return epoch
    return 0

  def _set_aside(self, epoch: int, error: Exception | None, prefix: str = "damaged",
                 why: str = "", reopen: bool = True) -> None:
    """Renames a checkpoint out of Orbax's way (kept, not deleted); `reopen=False` leaves
    reopening Orbax's manager to the caller (with several processes, all reopen together)."""
    source = self.directory / str(epoch)
    target, k = self.directory / f"{prefix}-{epoch}", 1
    while target.exists():
      k += 1
      target = self.directory / f"{prefix}-{epoch}.{k}"
    if reopen:
      self._manager.close()
    os.replace(source, target)
    if self._digest_path(epoch).exists():
      os.replace(self._digest_path(epoch), target.with_name(target.name + ".digest.json"))
    if reopen:
      self._manager = self._open()
    if error is None:
      notices.warn(f"checkpoint {source} is newer than the run's records ({why}); it is kept as "
                 f"{target.name} and the run resumes from the checkpoint before it")
      return
    cause = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
    notices.warn(f"checkpoint {source} cannot be read ({type(error).__name__}: {cause}); it is "
               f"kept as {target.name} and the run resumes from the previous intact checkpoint")

  def close(self) -> None:
    self._manager.close()
