"""Extending a run by raising `num_epochs`: which parts' behaviour reads `num_epochs`.

  reasons = num_epochs_readers(config, finished_epochs=4)   # [] -> the run may be extended

A run made with `num_epochs=E` and rerun with a larger value continues from its checkpoint of
epoch E and equals a run made with the new value from the start, unless some part's behaviour
before epoch E depended on E. This module is the one declaration of those parts (each entry a
test over the config; it can move onto the part objects as a `reads_num_epochs(config)` method):

  schedule=cosine              decays the learning rate over num_epochs * steps_per_epoch
  weighting.scheme=self_paced  (running weights) admits examples by epoch / num_epochs
  prioritization=infobatch     prunes until infobatch_anneal * num_epochs
  the last epoch's evaluation  a run evaluates (and checkpoints) at its last epoch even off
                               the eval_every grid; when eval_every does not divide E, that
                               evaluation (its eval statistics, reduction's re-selection) is one
                               the longer run would not have made

Parts that do not read it: constant and multistep schedules (milestones are absolute epochs),
warmup (warmup_epochs), the other weighting schemes and prioritization methods, reduction (it
re-selects every reduction.every epochs from the threshold on), pruning, turn-over, holdout,
checkpoint_every (checkpoints do not change results).
"""

from __future__ import annotations

import json
import pathlib

from regularity_jax.training.errors import ConfigError


def num_epochs_readers(config, finished_epochs: int) -> list[str]:
  """Why `config`'s run, trained for `finished_epochs`, cannot simply continue to
  `config.num_epochs` (one short reason per part that reads num_epochs); [] when it can.
  `finished_epochs` 0: the run had not reached its last epoch (no last evaluation yet)."""
  reasons = []
  if config.schedule == "cosine":
    reasons.append("schedule=cosine decays the learning rate over num_epochs")
  weighting = config.weighting
  if (weighting.scheme == "self_paced" and not weighting.scores_path):
    reasons.append("weighting.scheme=self_paced paces its weights by epoch / num_epochs")
  if config.prioritization == "infobatch":
    reasons.append("prioritization=infobatch anneals at infobatch_anneal * num_epochs")
  every = int(config.eval_every)
  if finished_epochs % every:
    reasons.append(f"the run evaluated at its last epoch {finished_epochs}, off the "
                   f"eval_every={every} grid, which a longer run would not have done")
  return reasons


def check(workdir: pathlib.Path, config) -> int | None:
  """The finished run's num_epochs when `config` extends the run in `workdir` (a larger
  num_epochs, all else equal or resume-neutral, checked by `RunDirectory`); None when it does
  not extend one. ConfigError (one line) when a part reads num_epochs."""
  path = pathlib.Path(workdir) / "config.json"
  try:
    saved = json.loads(path.read_text())
    old = int(saved["num_epochs"])
  except (OSError, ValueError, KeyError, TypeError):
    return None  # no run there, or RunDirectory says what is wrong with it
  new = int(config.num_epochs)
  if new <= old:
    return None
  metrics = pathlib.Path(workdir) / "metrics.jsonl"
  done = 0
  try:
    for line in metrics.read_text(errors="replace").splitlines():
      try:
        done = max(done, int(json.loads(line)["epoch"]))
      except (ValueError, KeyError, TypeError):
        pass
  except OSError:
    pass
  reasons = num_epochs_readers(config, old if done >= old else 0)
  if reasons:
    raise ConfigError(
        f"workdir {workdir} was made with num_epochs={old} and cannot be extended to {new}: "
        f"{'; '.join(reasons)}; nothing was changed: train a new --workdir with "
        f"--config.num_epochs={new}")
  return old
