"""The training loop of the main job: `train_and_evaluate(config, workdir)`.

Per epoch: one permutation from the run key, fixed-shape padded batches gathered and augmented
on the device, one fused jitted step per batch (train step + presentation-stream kernels), one
host sync at the end of the epoch (loss/accuracy sums), evaluation of the full train and test
splits every `eval_every` epochs (evaluation-stream kernels, and the turn-over estimators when
on), then a checkpoint. The transfer guard is on inside the step loop, so no silent host copy
can hide there.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import pathlib
import sys
import time
from typing import Any

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from regularity_jax import data
from regularity_jax import metrics
from regularity_jax import models
from regularity_jax import weighting
from regularity_jax.data import batching
from regularity_jax.metrics import difficulty
from regularity_jax.estimators import turnover as turnover_estimator
from regularity_jax.selection import online
from regularity_jax.selection import pruning
from regularity_jax.runs import Checkpointer
from regularity_jax.runs import RunDirectory
from regularity_jax.runs import plots
from regularity_jax.runs import scores_file
from regularity_jax.training import config as config_lib
from regularity_jax.training import optimizers
from regularity_jax.training import prioritization
from regularity_jax.training import seeds
from regularity_jax.training import sharding
from regularity_jax.training import steps
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.errors import TrainingDiverged
from regularity_jax.training.state import STREAM_DATA_ORDER
from regularity_jax.training.state import STREAM_INIT
from regularity_jax.training.state import STREAM_TURNOVER
from regularity_jax.training.state import TrainState


@dataclasses.dataclass
class RunResult:
  """What `train_and_evaluate` returns: the run directory and its final numbers.

  `trace_counts` says how often each jitted function was traced (compiled) in this process:
  1 each, however the training subset changed.
  """
  workdir: pathlib.Path
  metrics: list[dict[str, Any]]
  scores: dict[str, np.ndarray]
  trace_counts: dict[str, int] = dataclasses.field(default_factory=dict)

  @property
  def final(self) -> dict[str, Any]:
    return self.metrics[-1] if self.metrics else {}


def _split_arrays(split: data.Split) -> dict[str, np.ndarray]:
  return {"image": split.images, "label": split.labels, "id": split.ids,
          "weight": np.ones(len(split), np.float32)}


def model_kwargs(config) -> dict[str, Any]:
  kwargs = config.model_kwargs.to_dict()
  if config.turnover.enabled:
    kwargs.setdefault("turnover_sites", tuple(config.turnover.sites))
    kwargs.setdefault("turnover_rate", float(config.turnover.rate))
  return kwargs


def build_model(config, dataset: data.Dataset, key: jax.Array):
  """Creates the model named by the config; returns (graphdef, params, model_state)."""
  dtype = jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32
  try:
    model = models.create_model(config.model, num_classes=dataset.num_classes,
                                example_shape=dataset.example_shape, rngs=nnx.Rngs(params=key),
                                dtype=dtype, **model_kwargs(config))
  except (TypeError, ValueError) as e:
    raise ConfigError(f"cannot build model {config.model!r}: {e}") from None
  return models.split(model)


def load_data(config) -> data.Dataset:
  dataset = data.load_dataset(config.dataset, config.data_dir or None,
                              train_subset=config.train_subset or None,
                              test_subset=config.test_subset or None,
                              subset_seed=config.subset_seed)
  return data.corrupt(dataset, config.corruption.kind, config.corruption.fraction,
                      config.corruption.seed)


def _aggregates(prefix: str, table: dict[str, jnp.ndarray], ids: jnp.ndarray) -> dict[str, jnp.ndarray]:
  """A few scalar summaries of a split's statistics for metrics.jsonl (on device)."""
  out = {}
  if "forgetting_events" in table:
    out[f"{prefix}forgetting_events_mean"] = jnp.mean(table["forgetting_events"][ids])
    out[f"{prefix}unforgettable_fraction"] = jnp.mean(table["unforgettable"][ids])
    out[f"{prefix}never_learned_fraction"] = jnp.mean(table["never_learned"][ids])
  if "aum" in table:
    out[f"{prefix}last_margin_mean"] = jnp.nanmean(table["last_margin"][ids])
  return out


def _file_weights(config, dataset: data.Dataset) -> np.ndarray:
  """Weights from a previous run's scores.npz, matched by example id (provenance checked)."""
  aligned = scores_file.read_aligned(config.weighting.scores_path, config.weighting.score,
                                     dataset, what="weighting.scores_path",
                                     allow_partial=bool(config.weighting.allow_partial))
  ranks = weighting.difficulty_rank(aligned)
  return np.asarray(_scheme_weights(config, ranks, progress=0.0))


def _pruning_mask(config, dataset: data.Dataset) -> np.ndarray:
  """bool[n_train]: static pruning by a previous run's scores (or at random), ids matched."""
  n = len(dataset.train)
  if float(config.pruning.fraction_kept) >= 1.0:
    return np.ones(n, bool)
  cfg = config.pruning
  if cfg.score == "random":
    scores = np.zeros(n, np.float32)
    rule = "random"
  else:
    scores = scores_file.read_aligned(cfg.scores_path, cfg.score, dataset,
                                      what="pruning.scores_path",
                                      allow_partial=bool(cfg.allow_partial))
    rule = cfg.rule
  kept = pruning.select(scores, fraction_kept=cfg.fraction_kept, rule=rule,
                        labels=dataset.train.labels, seed=cfg.seed, num_bins=cfg.num_bins,
                        ties=cfg.ties)
  mask = np.zeros(n, bool)
  mask[kept] = True
  return mask


def _scheme_weights(config, ranks, progress):
  w = config.weighting
  return weighting.weights(w.scheme, ranks, temperature=w.temperature, progress=progress,
                           pace_start=w.pace_start, pace_end=w.pace_end)


class _Frozen:
  """A read-only, hashable view of a ConfigDict for static use inside jit (with overrides)."""

  def __init__(self, config, **overrides):
    self._values = {**config.to_dict(), **overrides}

  def __getattr__(self, name):
    try:
      return self._values[name]
    except KeyError:
      raise AttributeError(name) from None


def _counting(fn, name: str, counts: dict[str, int]):
  """Wraps `fn` so that `counts[name]` grows each time JAX traces it (i.e. compiles)."""
  def traced(*args, **kwargs):
    counts[name] = counts.get(name, 0) + 1
    return fn(*args, **kwargs)
  return traced


def select_lowest_margin(margins: jnp.ndarray, count: jnp.ndarray, key: jax.Array,
                         by: str) -> jnp.ndarray:
  """bool[N]: the `count` training rows with the lowest margins (NaN last; ties by position),
  or `count` random rows (`by="random"`, the same-size control)."""
  n = margins.shape[0]
  if by == "random":
    order = jax.random.permutation(key, n)
  else:
    order = jnp.argsort(jnp.where(jnp.isnan(margins), jnp.inf, margins), stable=True)
  return jnp.zeros((n,), bool).at[order].set(jnp.arange(n) < count)


def train_and_evaluate(config, workdir) -> RunResult:
  """Trains `config`'s model while tracking every example; writes the run directory.

  Resumes from the last checkpoint when `workdir` already holds this config's run.

  Args:
    config: an ml_collections.ConfigDict from `config.default_config()` (with overrides).
    workdir: the run directory (created if missing; never deleted).

  Returns:
    RunResult with the per-epoch records and the per-example scores written to scores.npz.
  """
  config = copy.deepcopy(config)
  config_lib.validate(config)
  RunDirectory.check(workdir, config)  # Refuse a wrong workdir before loading anything.
  dataset = load_data(config)
  # Inputs from other runs are checked before the workdir is claimed: a refused run leaves
  # nothing behind, and the corrected command can use the same workdir.
  pruning_mask = _pruning_mask(config, dataset)
  weights_from_file = config.weighting.scheme != "uniform" and bool(config.weighting.scores_path)
  file_weights = _file_weights(config, dataset) if weights_from_file else None
  run = RunDirectory(workdir, config)
  mesh = sharding.make_mesh(config.num_devices)
  sharding.check_batch_size(config.batch_size, mesh)
  sharding.check_batch_size(config.eval_batch_size, mesh, "eval_batch_size")
  replicated = sharding.replicated(mesh)
  rows = sharding.batch_sharded(mesh, axis=1)
  use_turnover = bool(config.turnover.enabled)

  n_train, n_test = len(dataset.train), len(dataset.test)
  steps_per_epoch = batching.num_steps(n_train, config.batch_size)
  id_space = int(max(dataset.train.ids.max(initial=-1), dataset.test.ids.max(initial=-1))) + 1
  tracker = metrics.Tracker(id_space, kernels=tuple(config.tracking.kernels))

  num_seeds = int(config.num_seeds)
  # Replica k is the run with seed + k: vmap every per-state function over a leading axis.
  lift = (lambda fn, axes: fn) if num_seeds == 1 else (lambda fn, axes: jax.vmap(fn, in_axes=axes))
  tx = optimizers.make_optimizer(config)
  schedule = optimizers.make_schedule(config, steps_per_epoch)
  kind = config.prioritization

  def init_state(seed):
    run_key = jax.random.key(seed)
    graphdef, params, model_state = build_model(config, dataset,
                                                jax.random.fold_in(run_key, STREAM_INIT))
    extra = {"reduction": {"active": jnp.asarray(pruning_mask)}}
    if kind == "selective_backprop":
      extra["sb"] = online.sb_init(config.prioritization_options.sb_history)
    if use_turnover:
      extra["turnover"] = turnover_estimator.init(id_space, dataset.num_classes)
    return graphdef, TrainState(
        step=jnp.zeros((), jnp.int32), epoch=jnp.zeros((), jnp.int32), params=params,
        model_state=model_state, opt_state=tx.init(params),
        clock=optimizers.init_clock(config, steps_per_epoch, n_train),
        key=jax.random.key_data(run_key),
        train_stats=tracker.init(), eval_stats={"train": tracker.init(), "test": tracker.init()},
        extra=extra)

  graphdef, state = init_state(config.seed)
  if num_seeds > 1:
    replicas = [state] + [init_state(config.seed + k)[1] for k in range(1, num_seeds)]
    state = jax.tree.map(lambda *xs: jnp.stack(xs), *replicas)
  state = jax.device_put(state, replicated)

  checkpointer = Checkpointer(run.checkpoint_dir, max_to_keep=config.keep_checkpoints)
  start_epoch = 0
  if checkpointer.latest_epoch() is not None:
    state = checkpointer.restore(state)
    start_epoch = int(np.ravel(jax.device_get(state.epoch))[0])
  run.keep_metrics_through(start_epoch)  # Later epochs, if any were logged, are rerun.
  records = run.read_metrics()

  train_arrays = _split_arrays(dataset.train)
  if weights_from_file:
    train_arrays["weight"] = file_weights
  train_split = jax.device_put(train_arrays, replicated)
  test_split = jax.device_put(_split_arrays(dataset.test), replicated)
  train_ids = jax.device_put(dataset.train.ids, replicated)
  test_ids = jax.device_put(dataset.test.ids, replicated)

  traces: dict[str, int] = {}
  train_step = steps.make_train_step(graphdef, tx, tracker, schedule, turnover=use_turnover)
  fused_step = steps.make_epoch_step(train_step, augment_images=config.augment,
                                     crop_padding=config.crop_padding)
  epoch_step = jax.jit(_counting(lift(fused_step, (0, 0, None, 0, 0, 0)), "epoch_step", traces),
                       donate_argnums=(0, 1))
  evaluate = jax.jit(_counting(lift(steps.make_evaluate(steps.make_eval_step(graphdef, tracker)),
                                    (0, 0, 0, None, None, None)), "evaluate", traces),
                     donate_argnums=(2,))
  scanned_epoch = jax.jit(_counting(lift(steps.make_scanned_epoch(fused_step),
                                         (0, 0, None, 0, 0, 0, None)), "scanned_epoch", traces),
                          donate_argnums=(0, 1))
  turnover_pass = steps.make_turnover_evaluate(graphdef)
  evaluate_turnover = jax.jit(lift(
      lambda s, stats, split, positions, mask: turnover_pass(
          s.params, s.model_state, s.rng(STREAM_TURNOVER), stats, split, positions, mask),
      (0, 0, None, None, None)), donate_argnums=(1,))
  if kind == "selective_backprop":
    sb_step = jax.jit(_counting(prioritization.make_sb_epoch_step(
        train_step, graphdef, batch_size=config.batch_size, beta=config.prioritization_options.sb_beta,
        augment_images=config.augment, crop_padding=config.crop_padding), "sb_step", traces),
                      donate_argnums=(0, 1))

  def plan(state, epoch, kind):
    table = tracker.summarize(state.train_stats)
    if kind == "noise_aware":
      if use_turnover:
        table = {**table, **turnover_estimator.summarize(state.extra["turnover"])}
      flags = difficulty.score(config.prioritization_options.noise_score, table)
    else:
      flags = jnp.zeros((id_space,), jnp.float32)
    last_loss = table["last_loss"] if "last_loss" in table else jnp.full((id_space,), jnp.nan)
    key = jax.random.fold_in(state.rng(STREAM_DATA_ORDER), epoch)
    return prioritization.epoch_plan(
        _Frozen(config.prioritization_options, kind=kind), key,
        last_loss=last_loss[train_ids], seen=jnp.isfinite(last_loss[train_ids]),
        flag_scores=flags[train_ids], base_active=state.extra["reduction"]["active"],
        epoch=epoch, num_epochs=config.num_epochs, batch_size=config.batch_size)

  plan_shardings = {"positions": rows, "masks": rows, "row_weights": rows,
                    "example_weights": replicated, "num_active": replicated}
  if num_seeds > 1:
    plan_shardings = {k: sharding.batch_sharded(mesh, axis=2) if v is rows else replicated
                      for k, v in plan_shardings.items()}
  make_plan = {k: jax.jit(_counting(lift(lambda s, e, k=k: plan(s, e, k), (0, None)),
                                    "epoch_plan_" + k, traces), out_shardings=plan_shardings)
               for k in {kind, "uniform"}}
  margin_summary = jax.jit(lift(lambda s: _margin_summary(config, s, train_ids, test_ids), 0))
  reselect = jax.jit(_counting(
      lambda s, epoch: select_lowest_margin(
          tracker_margins(s.eval_stats["train"], train_ids),
          jnp.int32(max(1, round(config.reduction.fraction * n_train))),
          jax.random.fold_in(s.rng(STREAM_DATA_ORDER, 1), epoch), config.reduction.by),
      "reselect", traces))
  eval_rows = {name: jax.device_put(batching.eval_batches(n, config.eval_batch_size), rows)
               for name, n in (("train", n_train), ("test", n_test))}
  aggregates = jax.jit(lift(lambda s: {
      **_aggregates("train_", tracker.summarize(s.train_stats), train_ids),
      **_aggregates("test_", tracker.summarize(s.eval_stats["test"]), test_ids)}, 0))
  summarize = jax.jit(lift(tracker.summarize, 0))

  running_weights = config.weighting.scheme != "uniform" and not weights_from_file

  @jax.jit
  def weights_from_state(state, progress):
    table = dict(tracker.summarize(state.train_stats))
    if use_turnover:
      table.update(turnover_estimator.summarize(state.extra["turnover"]))
    score = difficulty.score(config.weighting.score, table)[train_ids]
    return _scheme_weights(config, weighting.difficulty_rank(score), progress)

  bar = tqdm.tqdm(total=config.num_epochs * steps_per_epoch, initial=start_epoch * steps_per_epoch,
                  unit="step", desc=f"{config.dataset}/{config.model}", file=sys.stderr,
                  disable=not config.progress_bar, mininterval=0.5, dynamic_ncols=True)
  last_good = start_epoch
  for epoch in range(start_epoch, config.num_epochs):
    t0 = time.perf_counter()
    if running_weights and epoch >= config.weighting.start_epoch:
      progress = jax.device_put(np.float32(epoch / config.num_epochs), replicated)
      train_split = {**train_split, "weight": weights_from_state(state, progress)}
    epoch_kind = "uniform" if (kind == "selective_backprop" and epoch == 0) else kind
    epoch_plan = make_plan[epoch_kind](state, jax.device_put(np.int32(epoch), replicated))
    first_step, num_active = jax.device_get((state.step, epoch_plan["num_active"]))
    first_step, num_active = int(np.ravel(first_step)[0]), int(np.max(num_active))
    step_fn = sb_step if epoch_kind == "selective_backprop" else epoch_step
    num_rows = batching.num_steps(num_active, epoch_plan["positions"].shape[-1])
    if config.schedule_clock == "epoch":  # the schedule follows the epoch (optimizers)
      clock = optimizers.epoch_clock(epoch, num_rows, steps_per_epoch)
      if num_seeds > 1:
        clock = jax.tree.map(lambda x: jnp.stack([x] * num_seeds), clock)
      state = state.replace(clock=jax.device_put(clock, replicated))
    epoch_lr = float(schedule(np.ravel(jax.device_get(state.clock.position))[0]))
    epoch_split = train_split
    if kind in ("infobatch", "noise_aware"):
      epoch_split = {**train_split, "weight": train_split["weight"] * epoch_plan["example_weights"]}
    carry = steps.init_epoch_carry()
    if num_seeds > 1:
      carry = jax.tree.map(lambda x: jnp.stack([x] * num_seeds), carry)
    carry = jax.device_put(carry, replicated)
    if config.scan_epoch and step_fn is epoch_step:
      state, carry = scanned_epoch(state, carry, epoch_split, epoch_plan["positions"],
                                   epoch_plan["masks"], epoch_plan["row_weights"],
                                   jax.device_put(np.int32(num_rows), replicated))
      bar.update(num_rows)
    else:
      with jax.transfer_guard("disallow"):
        for _ in range(num_rows):
          state, carry = step_fn(state, carry, epoch_split, epoch_plan["positions"],
                                 epoch_plan["masks"], epoch_plan["row_weights"])
          bar.update(1)
    end = jax.device_get({"sums": carry["sums"], "forwarded": carry["forwarded"],
                          "step": state.step,
                          "active": jnp.mean(state.extra["reduction"]["active"])})
    sums = np.asarray(end["sums"]).reshape(-1, 3)  # [K, 3]
    loss_sum, correct_sum, count = (float(x) for x in sums.sum(0) / len(sums))
    forwarded = int(np.mean(end["forwarded"]))
    if not math.isfinite(loss_sum):
      bar.close()
      raise TrainingDiverged(
          f"the training loss became {loss_sum} in epoch {epoch + 1}; stopped, and the last good "
          f"checkpoint (epoch {last_good}) is kept in {run.checkpoint_dir}: lower "
          "--config.learning_rate (or check the inputs) and start a new --workdir")
    state = state.replace(epoch=jax.device_put(np.full(np.shape(state.epoch), epoch + 1, np.int32),
                                               replicated))
    record = {"epoch": epoch + 1, "step": int(np.ravel(end["step"])[0]),
              "learning_rate": epoch_lr,
              "train_loss": loss_sum / count, "train_accuracy": correct_sum / count,
              "examples_presented": int(count), "examples_backpropagated": int(count),
              "examples_forwarded": forwarded,
              "train_fraction_used": round(float(end["active"]), 6),
              "train_time_s": time.perf_counter() - t0}
    if num_seeds > 1:
      record["train_accuracy_per_seed"] = (sums[:, 1] / sums[:, 2]).tolist()
    if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.num_epochs:
      t1 = time.perf_counter()
      for name, split, prefix in (("train", train_split, "eval_train_"), ("test", test_split, "test_")):
        stats, eval_sums = evaluate(state.params, state.model_state, state.eval_stats[name], split,
                                    *eval_rows[name])
        state = state.replace(eval_stats={**state.eval_stats, name: stats})
        e_sums = np.asarray(jax.device_get(eval_sums)).reshape(-1, 3)
        record[f"{prefix}loss"] = float(np.mean(e_sums[:, 0] / e_sums[:, 2]))
        record[f"{prefix}accuracy"] = float(np.mean(e_sums[:, 1] / e_sums[:, 2]))
        if num_seeds > 1:
          record[f"{prefix}accuracy_per_seed"] = (e_sums[:, 1] / e_sums[:, 2]).tolist()
      if use_turnover:
        stats = evaluate_turnover(state, state.extra["turnover"], train_split, *eval_rows["train"])
        state = state.replace(extra={**state.extra, "turnover": stats})
        record.update(_turnover_record(stats, dataset, num_seeds))
      if "margins" in tracker.kernels:
        margins = jax.device_get(margin_summary(state))
        if num_seeds > 1:
          margins = {k: np.mean(v, axis=0) for k, v in margins.items()}
        record.update(jax.tree.map(lambda x: np.asarray(x).tolist(), margins))
      if config.reduction.enabled:
        state, selected = _maybe_reselect(config, state, record, epoch, reselect, run, dataset,
                                          replicated)
        record["reduction_reselected"] = selected
      record["eval_time_s"] = time.perf_counter() - t1
    summaries = jax.device_get(aggregates(state))
    record.update({k: float(np.mean(v)) for k, v in summaries.items()})
    if num_seeds > 1 and "train_unforgettable_fraction" in summaries:
      record["train_unforgettable_fraction_per_seed"] = (
          summaries["train_unforgettable_fraction"].tolist())
      combined = seeds.combine(jax.device_get(summarize(state.train_stats)))
      record["train_unforgettable_fraction"] = float(
          np.mean(combined["unforgettable"][dataset.train.ids]))
    records.append(record)
    run.append_metrics(record)
    bar.set_postfix(epoch=epoch + 1, loss=f"{record['train_loss']:.3f}",
                    acc=f"{record['train_accuracy']:.3f}",
                    test=f"{record.get('test_accuracy', float('nan')):.3f}")
    if (epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.num_epochs:
      checkpointer.save(epoch + 1, state)
      last_good = epoch + 1
  bar.close()
  checkpointer.close()

  if num_seeds == 1:
    scores = _replica_scores(config, tracker, state, dataset)
  else:
    per_seed = [_replica_scores(config, tracker, jax.tree.map(lambda x, k=k: x[k], state), dataset)
                for k in range(num_seeds)]
    scores = _combine_replica_scores(per_seed)
  scores["train/weight"] = np.asarray(jax.device_get(train_split["weight"]))
  if use_turnover:
    if config.turnover.influence_targets == "test":
      write_influence(run.path / "influence.npz", config, graphdef, state, dataset)
  run.write_scores(scores, scores_file.provenance(config, dataset))
  if config.plots:
    plots.write_all(records, scores, run.plots_dir)
  return RunResult(workdir=run.path, metrics=records, scores=scores, trace_counts=traces)


def _replica_scores(config, tracker, state: TrainState, dataset: data.Dataset) -> dict[str, np.ndarray]:
  """scores.npz arrays of one replica (a state without the seed axis)."""
  scores = collect_scores(tracker, state, dataset)
  norm = jax.device_get(models.norms.network_norm(state.params, state.model_state,
                                                  kind=config.margins.normalizer, model=config.model))
  for split in ("train", "test"):
    last = scores.get(f"{split}/eval_last_margin" if split == "train" else "test/last_margin")
    if last is not None:  # the margins kernel is tracked
      scores[f"{split}/normalized_margin"] = np.asarray(last / norm, np.float32)
  scores["train/active"] = np.asarray(jax.device_get(state.extra["reduction"]["active"]))
  if "turnover" in state.extra:
    scores.update(turnover_estimator.scores_from_state(state.extra["turnover"], dataset.train.ids))
  return scores


_PER_RUN_KEYS = ("example_id", "label", "original_label", "corrupted", "active")


def _combine_replica_scores(per_seed: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """Seed-combined `<split>/<key>` (see `seeds.combine`) plus per-seed `<split>/seed<k>/<key>`;
  `train/flipped_prob` keeps the seed axis ([K, N, C]) for `estimators.bias_variance`."""
  out = {}
  for split in ("train", "test"):
    keys = [k for k in per_seed[0] if k.startswith(f"{split}/")]
    stat_keys = [k for k in keys if k.split("/", 1)[1] not in _PER_RUN_KEYS
                 and k != "train/flipped_prob"]
    for key in keys:
      if key not in stat_keys:
        out[key] = per_seed[0][key]
    stacked = {k.split("/", 1)[1]: np.stack([s[k] for s in per_seed]) for k in stat_keys}
    for name, value in seeds.combine(stacked).items():
      out[f"{split}/{name}"] = value
    for k, table in enumerate(per_seed):
      for key in stat_keys:
        out[f"{split}/seed{k}/{key.split('/', 1)[1]}"] = table[key]
  if "train/flipped_prob" in per_seed[0]:
    out["train/flipped_prob"] = np.stack([s["train/flipped_prob"] for s in per_seed])
  return out


def tracker_margins(stats, ids: jnp.ndarray) -> jnp.ndarray:
  """Logit margins f32[n] of the latest evaluation of rows `ids` (needs the margins kernel)."""
  return stats["margins"].last_margin[ids]


def _margin_summary(config, state: TrainState, train_ids, test_ids) -> dict[str, jnp.ndarray]:
  """Normalized-margin summaries of the latest evaluation (on device)."""
  log_norm = models.norms.log_network_norm(state.params, state.model_state,
                                           kind=config.margins.normalizer, model=config.model)
  out = {"log_network_norm": log_norm}
  for prefix, stats, ids in (("", state.eval_stats["train"], train_ids),
                             ("test_", state.eval_stats["test"], test_ids)):
    normalized = stats["margins"].last_margin[ids] * jnp.exp(-log_norm)
    out[f"{prefix}margin_auc"] = metrics.margin_distribution.margin_auc(normalized)
    if not prefix:
      _, q = metrics.margin_distribution.margin_distribution_curve(normalized, num_points=config.margins.quantiles)
      out["train_margin_quantiles"] = q
  return out


def _maybe_reselect(config, state: TrainState, record: dict, epoch: int, reselect, run,
                    dataset: data.Dataset, replicated) -> tuple[TrainState, bool]:
  """Dynamic reduction, after an evaluation: once the training split is separated (eval
  accuracy >= threshold), keep the lowest-margin fraction; from then on re-select every
  `every` epochs (whatever the accuracy), always from the whole training split's margins.
  The kept ids of each selection go to reduction/kept_ids_epoch_<E>.npy."""
  separated = record.get("eval_train_accuracy", 0.0) >= config.reduction.threshold
  started = not bool(jax.device_get(jnp.all(state.extra["reduction"]["active"])))
  if (started and (epoch + 1) % config.reduction.every) or (not started and not separated):
    return state, False
  active = reselect(state, jax.device_put(np.int32(epoch), replicated))
  folder = run.path / "reduction"
  folder.mkdir(exist_ok=True)
  kept = dataset.train.ids[np.asarray(jax.device_get(active))]
  np.save(folder / f"kept_ids_epoch_{epoch + 1:04d}.npy", kept.astype(np.int32))
  return state.replace(extra={**state.extra, "reduction": {"active": active}}), True


def _turnover_record(stats, dataset: data.Dataset, num_seeds: int = 1) -> dict[str, float]:
  """metrics.jsonl summaries of the turn-over estimators (and their AUROC for corrupted labels)."""
  table = jax.device_get(turnover_estimator.summarize(stats) if num_seeds == 1 else
                         jax.vmap(turnover_estimator.summarize)(stats))
  if num_seeds > 1:
    table = seeds.combine(table)
  ids = dataset.train.ids
  out = {"train_memorization_mean": float(np.nanmean(table["memorization"][ids])),
         "train_memorization_loss_mean": float(np.nanmean(table["memorization_loss"][ids])),
         "train_generalization_error_mean": float(np.nanmean(table["generalization_error"][ids]))}
  # Label corruptions: what a detector can find is a changed label (random_labels redraws
  # from all classes, so about 1/C keep theirs); image corruptions: the corrupted flag.
  flags = dataset.train.labels != dataset.train.original_labels
  if not flags.any():
    flags = dataset.train.corrupted
  if flags.any() and not flags.all():
    out["memorization_auroc_corrupted"] = auroc(table["memorization_loss"][ids], flags)
  return out


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
  """Area under the ROC curve of `scores` for flagging `positives` (ties count one half)."""
  scores = np.nan_to_num(np.asarray(scores, np.float64), nan=-np.inf)
  pos, neg = scores[positives], scores[~positives]
  order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
  ranks = np.empty(len(order))
  values = np.concatenate([pos, neg])[order]
  # Average ranks of ties (1-based).
  i = 0
  while i < len(values):
    j = i
    while j + 1 < len(values) and values[j + 1] == values[i]:
      j += 1
    ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
    i = j + 1
  return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def write_influence(path: pathlib.Path, config, graphdef, state: TrainState,
                    dataset: data.Dataset) -> None:
  """Influence of every training example on every test example (top-k and totals) -> npz."""
  fn = jax.jit(lambda params, model_state, key, ids, x, y: turnover_estimator.influence_on_targets(
      graphdef, params, model_state, key, ids, x, y, top_k=config.turnover.influence_top_k,
      block_size=config.turnover.influence_block))
  out = jax.device_get(fn(state.params, state.model_state, state.rng(STREAM_TURNOVER),
                          jnp.asarray(dataset.train.ids), jnp.asarray(dataset.test.images),
                          jnp.asarray(dataset.test.labels)))
  np.savez(path, **{"train/example_id": dataset.train.ids, "train/total_influence": out["total"],
                    "test/example_id": dataset.test.ids, "test/helpful_ids": out["helpful_ids"],
                    "test/helpful": out["helpful"], "test/harmful_ids": out["harmful_ids"],
                    "test/harmful": out["harmful"]})


def collect_scores(tracker: metrics.Tracker, state: TrainState,
                   dataset: data.Dataset) -> dict[str, np.ndarray]:
  """Per-example arrays for scores.npz, rows in split order, keyed `<split>/<statistic>`.

  train/<key>       presentation stream of the training split (CBTL is train/cumulative_correct)
  train/eval_<key>  evaluation stream of the training split
  test/<key>        evaluation stream of the test split (CBGL is test/cumulative_correct,
                    mal-generalizing events test/forgetting_events)
  """
  host = jax.device_get({"train": tracker.summarize(state.train_stats),
                         "eval_train": tracker.summarize(state.eval_stats["train"]),
                         "test": tracker.summarize(state.eval_stats["test"])})
  ids = {"train": dataset.train.ids, "test": dataset.test.ids}
  out = {
      "train/example_id": dataset.train.ids, "train/label": dataset.train.labels,
      "train/original_label": dataset.train.original_labels,
      "train/corrupted": dataset.train.corrupted,
      "test/example_id": dataset.test.ids, "test/label": dataset.test.labels,
  }
  for stream, prefix, split in (("train", "train/", "train"), ("eval_train", "train/eval_", "train"),
                                ("test", "test/", "test")):
    table = {k: np.asarray(v) for k, v in host[stream].items() if np.ndim(v) == 1}
    for key, value in table.items():
      out[f"{prefix}{key}"] = value[ids[split]]
    if stream != "eval_train" and "forgetting_events" in table:
      # Toneva's ranking score over this split's rows (the registry's one definition).
      rows = {k: v[ids[split]] for k, v in table.items()}
      out[f"{prefix}forgetting_score"] = difficulty.score(
          "forgetting" if split == "train" else "malgeneralizing", rows)
  return out
