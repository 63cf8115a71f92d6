"""One training epoch: the plan, the clock, the steps, and the epoch's record.

The host fetches twice per epoch: the plan's example count before the steps (the number of
rows to run), and the running sums after them. The step loop runs under
`jax.transfer_guard("disallow")`, so no silent host copy can hide there.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from regularity_jax.data import batching
from regularity_jax.training import hosts
from regularity_jax.training import optimizers
from regularity_jax.training import signals
from regularity_jax.training import steps
from regularity_jax.training.errors import TrainingDiverged


def train_epoch(setup, core, features, state, epoch: int, bar, *, last_good: int, run,
                resume: dict | None = None, save_partial=None):
  """Trains epoch `epoch` (0-based); returns (state, record, split): the record holds the
  metrics.jsonl keys

    epoch, step, learning_rate (at the start of the epoch), train_loss, train_accuracy
    (means over the backpropagated rows, train mode, before each update; + _per_seed),
    examples_presented, examples_backpropagated, examples_forwarded (Selective-Backprop
    forwards more than it backpropagates), train_fraction_used (active share of the
    training split), train_time_s;
  and `split` is the training split with this epoch's loss weights (difficulty weighting).

  A SIGTERM (`signals`) stops the step loop at the next step boundary (single process); then
  `save_partial(tree)` receives the epoch so far (`partial_tree`: the state, the carry, the
  plan, the split's changed columns, rows done) and `signals.Terminated` is raised. `resume`
  (such a tree, restored) continues the epoch from its rows done: the same steps follow, so the
  epoch ends bit-identical to an uninterrupted one.

  Raises:
    TrainingDiverged: the epoch's loss is not finite (the last good checkpoint is kept).
  """
  t0 = time.perf_counter()
  config, replicas = setup.config, setup.replicas
  method = features[-1]  # the prioritization method (`features.enabled_features`)
  if resume is None:
    split = setup.train_split
    for feature in features:
      split = feature.epoch_split(setup, state, epoch, split)
    plan = method.epoch_plan(setup, state, epoch)
    num_active = int(np.max(hosts.fetch(plan["num_active"])))
    num_rows = batching.num_steps(num_active, plan["positions"].shape[-1])
    if config.schedule_clock == "epoch":  # the schedule follows the epoch (optimizers)
      clock = replicas.broadcast(optimizers.epoch_clock(epoch, num_rows, setup.steps_per_epoch))
      state = state.replace(clock=setup.put(clock))
    learning_rate = float(setup.schedule(replicas.first(hosts.fetch(state.clock.position))))
    carry = setup.put(replicas.broadcast(steps.init_epoch_carry()))
    first = 0
  else:
    split = {**setup.train_split, **resume["split"]}
    plan, state, carry = resume["plan"], resume["state"], resume["carry"]
    num_rows, first = int(resume["num_rows"]), int(resume["rows"])
    learning_rate = float(resume["learning_rate"])
  epoch_split = split
  if method.uses_example_weights:
    epoch_split = {**split, "weight": split["weight"] * plan["example_weights"]}
  step = method.step_program(core, epoch)
  if config.scan_epoch and step is core.epoch_step and first == 0:
    state, carry = core.scanned_epoch(state, carry, epoch_split, plan["positions"],
                                      plan["masks"], plan["row_weights"],
                                      setup.put(np.int32(num_rows)))
    bar.update(num_rows)
  else:
    # None per step, or streamed rows (from row `first` of a resumed epoch)
    rows = (setup.pipeline.train_rows(setup, plan, num_rows) if not first else
            setup.pipeline.train_rows(setup, plan, num_rows, first=first))
    each_step = not hosts.multiprocess()  # several processes: epoch boundaries (signals)
    stopped_at = None
    with jax.transfer_guard("disallow"):
      for done, streamed in enumerate(rows, start=first):
        if each_step and signals.requested():  # a SIGTERM stops here, between two steps
          stopped_at = done
          break
        state, carry = step(state, carry, epoch_split, plan["positions"], plan["masks"],
                            plan["row_weights"], streamed)
        bar.update(1)
    if stopped_at is not None:
      if save_partial is not None:
        save_partial(partial_tree(setup, state, carry, plan, split, rows=stopped_at,
                                  num_rows=num_rows, learning_rate=learning_rate))
      raise signals.Terminated
  end = hosts.fetch({"sums": carry["sums"], "forwarded": carry["forwarded"],
                        "step": state.step, "active": jnp.mean(state.active)})
  sums = replicas.per_replica(end["sums"])  # [K, 3]: loss sum, correct count, example count
  loss_sum, correct_sum, count = (float(x) for x in sums.sum(0) / len(sums))
  if not math.isfinite(loss_sum):
    bar.close()
    raise TrainingDiverged(divergence_message(setup, loss_sum, epoch, last_good, run))
  state = state.replace(epoch=setup.put(np.full(np.shape(state.epoch), epoch + 1, np.int32)))
  record = {"epoch": epoch + 1, "step": int(replicas.first(end["step"])),
            "learning_rate": learning_rate,
            "train_loss": loss_sum / count, "train_accuracy": correct_sum / count,
            "examples_presented": int(count), "examples_backpropagated": int(count),
            "examples_forwarded": int(np.mean(end["forwarded"])),
            "train_fraction_used": round(float(end["active"]), 6),
            "train_time_s": time.perf_counter() - t0}
  if replicas.on:
    record["train_accuracy_per_seed"] = (sums[:, 1] / sums[:, 2]).tolist()
  return state, record, split


def partial_tree(setup, state, carry, plan, split, *, rows: int, num_rows: int,
                 learning_rate: float) -> dict:
  """What a mid-epoch checkpoint holds: the state and carry after `rows` of the epoch's
  `num_rows` steps, the epoch's plan, the columns the features changed in the training split
  (e.g. difficulty weights; computed from the epoch's first state, which the steps consumed),
  and the epoch's learning rate (its record's)."""
  changed = {k: v for k, v in split.items() if setup.train_split.get(k) is not v}
  return {"state": state, "carry": carry, "plan": dict(plan), "split": changed,
          "rows": np.asarray(rows, np.int64), "num_rows": np.asarray(num_rows, np.int64),
          "learning_rate": np.asarray(learning_rate, np.float64)}


def partial_template(setup, features, state, epoch: int) -> dict:
  """A tree of `partial_tree`'s structure, shapes, dtypes and shardings for epoch `epoch`,
  into which a mid-epoch checkpoint is restored (the plan and split computed from `state`,
  whose values do not matter)."""
  split = setup.train_split
  for feature in features:
    split = feature.epoch_split(setup, state, epoch, split)
  plan = features[-1].epoch_plan(setup, state, epoch)
  carry = setup.put(setup.replicas.broadcast(steps.init_epoch_carry()))
  return partial_tree(setup, state, carry, plan, split, rows=0, num_rows=0, learning_rate=0.0)


def divergence_message(setup, loss: float, epoch: int, last_good: int, run) -> str:
  """Names what was kept and the suspects of a non-finite loss, the likeliest first."""
  config = setup.config
  kept = (f"the last good checkpoint (epoch {last_good}) is kept in {run.checkpoint_dir}"
          if last_good > 0 else "no checkpoint had been written yet")
  suspects = []
  magnitude = float(np.max(np.abs(setup.dataset.train.images), initial=0.0))
  if magnitude > 1e3:
    suspects.append(f"the inputs (training images reach |x| = {magnitude:.3g} after "
                    "normalization: check the data files)")
  if config.weighting.scheme != "uniform":
    suspects.append(f"weighting.scheme={config.weighting.scheme} "
                    f"(temperature {config.weighting.temperature})")
  suspects.append(f"learning_rate={config.learning_rate} (try a smaller one)")
  if config.optimizer == "sgd" and float(config.momentum) > 0:
    suspects.append(f"momentum={config.momentum}")
  return (f"the training loss became {loss} in epoch {epoch + 1}; stopped, and {kept}. "
          f"Suspects: {'; '.join(suspects)}. Fix it and start a new --workdir")
