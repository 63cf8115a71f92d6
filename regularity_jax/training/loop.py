"""The training loop of the main job: `train_and_evaluate(config, workdir)`.

Per epoch (`epoch.train_epoch`): the prioritization method's fixed-shape plan, one fused jitted
step per batch (gather, augmentation, train step and presentation-stream kernels), one host sync
at each end. Every `eval_every` epochs the evaluators run (`evaluators`: the eval passes over
both splits, turn-over and margins), then the features' after-evaluation hooks (dynamic
reduction); every epoch ends with the summaries, one metrics.jsonl line and, every
`checkpoint_every` epochs, a checkpoint. The run ends with scores.npz (`runs.scores_file`),
the features' files, the plots and report.html (`regularity_jax.report`). Everything the loop
composes lives in a module of its own: `setup`, `programs`, `epoch`, `evaluators`, `features`,
`replicas`; with several processes (`hosts`) every process runs this loop and process 0 writes
the run directory's files.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import pathlib
import sys
import time
from typing import Any

import numpy as np
import tqdm

from regularity_jax import notices
from regularity_jax import report
from regularity_jax.metrics import statistics
from regularity_jax.runs import Checkpointer
from regularity_jax.runs import RunDirectory
from regularity_jax.runs import RunDirectoryError
from regularity_jax.runs import data_record
from regularity_jax.runs import directory as directory_lib
from regularity_jax.runs import plots
from regularity_jax.runs import scores_file
from regularity_jax.training import config as config_lib
from regularity_jax.training import epoch as epoch_lib
from regularity_jax.training import evaluators as evaluators_lib
from regularity_jax.training import extension
from regularity_jax.training import hosts
from regularity_jax.training import parts
from regularity_jax.training.epoch import train_epoch
from regularity_jax.training import signals
from regularity_jax.training.errors import Interrupted
from regularity_jax.training.errors import Terminated
from regularity_jax.training.features import enabled_features
from regularity_jax.training.programs import Programs
from regularity_jax.training.setup import Setup


@dataclasses.dataclass
class RunResult:
  """What `train_and_evaluate` returns: the run directory and its final numbers."""
  workdir: pathlib.Path
  metrics: list[dict[str, Any]]
  scores: dict[str, np.ndarray]

  @property
  def final(self) -> dict[str, Any]:
    return self.metrics[-1] if self.metrics else {}


def train_and_evaluate(config, workdir, *, base_dir=None, model=None) -> RunResult:
  """Trains `config`'s model while tracking every example; writes the run directory.

  Resumes from the last checkpoint when `workdir` already holds this config's run. Inputs
  (the config, the data, other runs' scores) are checked before the workdir is claimed, so a
  refused run leaves nothing behind.

  Args:
    config: an ml_collections.ConfigDict from `config.default_config()` (with overrides).
    workdir: the run directory (created if missing; never deleted).
    base_dir: the folder a relative `config.model` file path is taken from (experiments.main:
      the config file's); None: the current directory.
    model: a model class object (e.g. defined in a notebook cell), used instead of
      `config.model`, which becomes its 'module:QualifiedName'; config.json records that name
      and the sha256 of its source (`parts.resolve_object`), which a resume must match.

  Returns:
    RunResult with the per-epoch records and the per-example scores written to scores.npz.
  """
  t0 = time.perf_counter()
  config = copy.deepcopy(config)
  if hasattr(config, "to_dict"):  # else validate says what get_config must return
    config_lib.expand_paths(config)
  if model is not None:
    parts.use_object(config, model)
  config_lib.validate(config, base_dir)
  parts.record_model_source(config, base_dir)
  parts.record_dataset_source(config, base_dir)
  statistics.record_sources(config, base_dir)
  config_lib.record_resolved_paths(config)
  hosts.initialize(config)
  features = enabled_features(config, base_dir)
  hosts.check_supported(config, [f.name for f in features])
  hosts.on_writer(lambda: RunDirectory.check(workdir, config))
  hosts.on_writer(lambda: extension.check(directory_lib.expand_path(workdir), config))
  if not hosts.multiprocess():
    done = finished_result(workdir, config, features)
    if done is not None:  # intact: nothing is written, not even run.lock
      return done
  progress = {"epoch": 0, "checkpoint": 0, "trained": False}
  claimed = []

  def out_of_grace():  # SIGTERM, and no step boundary within sigterm_grace_s
    for run in claimed:
      run.unlock()
    print(f"error: {' '.join(terminated_message(progress, config).split())}", file=sys.stderr,
          flush=True)

  with signals.on_sigterm(float(config.get("sigterm_grace_s", 30.0)), out_of_grace):
    setup = Setup.create(config, features)
    hosts.on_writer(lambda: check_data(workdir, setup.dataset))
    run = hosts.on_writer(lambda: RunDirectory(workdir, config, lock=True))
    run = run or RunDirectory(workdir, config, writer=False)
    claimed.append(run)
    try:
      with interrupt_message(progress, config):
        return _train(config, setup, features, run, t0, progress, base_dir)
    finally:
      run.unlock()


def _train(config, setup, features, run, t0, progress, base_dir=None) -> RunResult:
  """The loop proper, on a claimed run directory."""
  options = {}
  for feature in features:  # e.g. turn-over: each example trains its own sub-network
    options.update(feature.program_options())
  core = Programs.build(setup, **options)
  evaluators = evaluators_lib.enabled_evaluators(config, base_dir)
  for part in (*features, *evaluators):
    part.build(setup, core)
  checkpointer = Checkpointer(run.checkpoint_dir, max_to_keep=config.keep_checkpoints)
  recorded = run.read_metrics()
  if (recorded and recorded[-1]["epoch"] >= config.num_epochs
      and getattr(run, "extended_from", None) is None):
    done = _finish_again(config, setup, features, evaluators, run, recorded, checkpointer, t0,
                         progress)
    if done is not None:
      return done
    progress["trained"] = False  # the final checkpoint is damaged: the epochs after the
    # newest intact one are trained again (bit for bit the same), then every file is written
  last = recorded[-1]["epoch"] if recorded else 0
  state, start_epoch = checkpointer.restore_or(setup.initial_state(), at_most=last)
  whole = start_epoch  # the newest whole-epoch checkpoint
  resume = None  # a SIGTERM's mid-epoch checkpoint of the epoch after `last`
  if not hosts.multiprocess() and last < config.num_epochs:
    resume = checkpointer.restore_partial(
        last, lambda: epoch_lib.partial_template(setup, features, state, last))
    if resume is not None:
      start_epoch, state = last, resume["state"]
  extended_from = getattr(run, "extended_from", None)
  if (start_epoch == 0 and resume is None and recorded
      and (extended_from is not None or run.scores_path.is_file())):
    raise RunDirectoryError(
        f"{run.path} has {recorded[-1]['epoch']} epochs recorded but none of its checkpoints "
        f"({run.checkpoint_dir}) can be restored, so it cannot continue without training again "
        "from epoch 0; nothing was changed: restore its checkpoints, or train a new --workdir")
  if run.writer and data_record.read(run.path) is None:  # recorded from now on, once the
    data_record.write(run.path, data_record.describe(setup.dataset))  # state is accepted
  if extended_from is not None:  # its finished files move aside first
    run.begin_extension(finished=bool(recorded) and recorded[-1]["epoch"] >= extended_from)
  records = run.keep_metrics_through(start_epoch, recorded)  # later epochs are rerun
  split = setup.train_split
  bar = tqdm.tqdm(total=config.num_epochs * setup.steps_per_epoch,
                  initial=start_epoch * setup.steps_per_epoch, unit="step",
                  desc=f"{config.dataset}/{config.model}", file=sys.stderr,
                  disable=not config.progress_bar or not run.writer, mininterval=0.5,
                  dynamic_ncols=True)
  progress.update(epoch=start_epoch + 1, checkpoint=whole)
  eval_seconds = 0.0  # the last evaluation's, for max_wall_time_s
  for epoch in range(start_epoch, config.num_epochs):
    progress["epoch"] = epoch + 1
    if terminate_requested():  # a SIGTERM during the last epoch's evaluation or files
      if resume is not None:  # the state is mid-epoch: its mid-epoch checkpoint stays
        progress["partial"] = (int(resume["rows"]), int(resume["num_rows"]))
      elif progress["checkpoint"] < epoch:  # its state is whole: kept, so nothing is lost
        checkpointer.save(epoch, state)
        progress["checkpoint"] = epoch
      raise signals.Terminated

    def save_partial(tree, epoch=epoch):  # SIGTERM between two steps of this epoch
      checkpointer.save_partial(epoch, int(tree["rows"]), tree)
      progress["partial"] = (int(tree["rows"]), int(tree["num_rows"]))

    state, record, split = train_epoch(setup, core, features, state, epoch, bar,
                                       last_good=progress["checkpoint"], run=run,
                                       resume=resume, save_partial=save_partial)
    resume = None
    if split["weight"] is not setup.train_split["weight"]:  # this epoch's own loss weights
      run.save_array(WEIGHT_FILE, hosts.fetch(split["weight"]))
    stop = epoch + 1 < config.num_epochs and out_of_time(config, t0, epoch, record,
                                                         eval_seconds)
    if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.num_epochs or stop:
      t1 = time.perf_counter()
      for evaluator in (e for e in evaluators if not e.every_epoch):
        state = evaluator(setup, core, state, record)
      for feature in features:
        state = feature.after_evaluation(setup, state, record, epoch, run)
      record["eval_time_s"] = eval_seconds = time.perf_counter() - t1
    for evaluator in (e for e in evaluators if e.every_epoch):
      state = evaluator(setup, core, state, record)
    records.append(record)
    run.append_metrics(record)
    bar.set_postfix(epoch=epoch + 1, loss=f"{record['train_loss']:.3f}",
                    acc=f"{record['train_accuracy']:.3f}",
                    test=f"{record.get('test_accuracy', float('nan')):.3f}")
    if (epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.num_epochs or stop:
      checkpointer.save(epoch + 1, state)
      progress["checkpoint"] = epoch + 1
    run.record_wall_time(time.perf_counter() - t0)  # a later kill loses at most this epoch
    if stop:
      if run.writer:
        notices.warn(f"stopped after epoch {epoch + 1} of {config.num_epochs}: another epoch "
                     f"would end past max_wall_time_s={config.max_wall_time_s}; rerun the "
                     "same command to resume")
      break
  progress["trained"] = True
  bar.close()
  checkpointer.close()
  scores = collect_scores(setup, features, evaluators, state, split)
  for feature in features:
    feature.finish(setup, state, run)
  run.write_scores(scores, _provenance(config, setup, run))
  if config.plots and run.writer:
    plots.write_all(records, scores, run.plots_dir)
  if config.report and run.writer:
    report.write(run.path, dataset=setup.dataset, k=int(config.report_k))
  run.record_wall_time(time.perf_counter() - t0)
  return RunResult(workdir=run.path, metrics=records, scores=scores)


WEIGHT_FILE = "weighting/train_weight.npy"


def _provenance(config, setup, run) -> dict[str, Any]:
  """scores.npz's provenance, with the run's user statistics (their scores, known to a later
  process by name) and extensions (`RunDirectory.begin_extension`)."""
  prov = scores_file.provenance(config, setup.dataset)
  declared = statistics.declared(setup.tracker.kernels)
  if declared:
    prov["statistics"] = declared
  history = run.extensions() if run.writer else []
  if history:
    prov["extensions"] = history
  return prov


def check_data(workdir, dataset) -> None:
  """RunDirectoryError (one line naming what changed) when the run in `workdir` recorded other
  data than `dataset` (`runs.data_record`); nothing recorded (a new run, or one made before
  data.json and DataIdentity) passes."""
  path = directory_lib.expand_path(workdir)
  recorded = data_record.recorded_for(path) if (path / "config.json").is_file() else None
  changes = data_record.differences(recorded, dataset)
  if changes:
    raise RunDirectoryError(data_record.message(
        path, recorded, dataset, changes,
        "nothing was changed: put back the data it was trained on (or the data_dir it used), "
        "or pass a new --workdir"))


def _feature_files(features) -> list[str]:
  return [name for feature in features for name in feature.final_files()]


def finished_result(workdir, config, features) -> RunResult | None:
  """For a finished run (metrics.jsonl reaches num_epochs) with every final file in place
  (`RunDirectory.final_files`): says so on stdout and returns its result, writing nothing.
  None otherwise (a new, unfinished, extended or incomplete run)."""
  path = directory_lib.expand_path(workdir)
  if not (path / "config.json").is_file() or not (path / "scores.npz").is_file():
    return None
  run = RunDirectory(path, config, writer=False)
  records = run.read_metrics()
  if not records or records[-1]["epoch"] != int(config.num_epochs):
    return None
  try:
    scores = scores_file.load(run.scores_path, what="scores.npz")
  except scores_file.ScoresFileError:
    return None  # damaged: written again from the final checkpoint
  files = run.final_files(config, _feature_files(features),
                          plots.plot_names(records, scores.arrays))
  if run.missing(files):
    return None
  print(f"{path} is finished ({records[-1]['epoch']} epochs) and its files are intact: "
        "nothing was written (raise --config.num_epochs to extend it)", flush=True)
  return RunResult(workdir=path, metrics=records, scores=dict(scores.arrays))


def _finish_again(config, setup, features, evaluators, run, records, checkpointer, t0,
                  progress) -> RunResult | None:
  """A finished run missing some final files (a kill while writing them, or deleted): each
  missing file is written again, from the final checkpoint where it needs the state, equal
  to the original; the files in place are not touched and nothing is trained. None when the
  final checkpoint is damaged and an older one intact (the caller trains the epochs after it
  again, as a resume does); RunDirectoryError when no checkpoint is left (never a retrain
  from epoch 0, and metrics.jsonl is left whole)."""
  epochs = int(config.num_epochs)
  progress.update(epoch=epochs, checkpoint=epochs, trained=True)
  state_files = ["scores.npz", "scores_train.csv", "scores_test.csv", *_feature_files(features)]
  missing = run.missing(state_files)
  if not missing:
    try:
      scores_file.load(run.scores_path, what="scores.npz")
    except scores_file.ScoresFileError:
      missing = ["scores.npz"]  # damaged
  if missing:
    state, epoch = checkpointer.restore_or(setup.initial_state(), at_most=epochs)
    if epoch == 0:
      raise RunDirectoryError(
          f"{run.path} finished {epochs} epochs but lacks {', '.join(missing)}, which need its "
          f"final state, and its checkpoints are gone from {run.checkpoint_dir}; nothing was "
          "trained or changed: restore its checkpoints (or those files), or train a new "
          "--workdir")
    if epoch != epochs:
      return None  # an older intact checkpoint: the loop trains the epochs after it again
    weight_path = run.path / WEIGHT_FILE
    split = {"weight": np.load(weight_path) if weight_path.is_file()
             else setup.train_split["weight"]}
    scores = collect_scores(setup, features, evaluators, state, split)
    run.write_scores(scores, _provenance(config, setup, run), only=missing)
    for feature in features:
      if set(feature.final_files()) & set(missing):
        feature.finish(setup, state, run)
  else:
    scores = dict(scores_file.load(run.scores_path, what="scores.npz").arrays)
  checkpointer.close()
  written = list(missing)
  if config.plots and run.writer:
    absent = [n for n in plots.plot_names(records, scores)
              if not (run.plots_dir / n).is_file()]
    if absent:
      plots.write_all(records, scores, run.plots_dir, only=set(absent))
      written += [f"plots/{n}" for n in absent]
  if config.report and run.writer and not (run.path / report.REPORT_NAME).is_file():
    report.write(run.path, dataset=setup.dataset, k=int(config.report_k))
    written.append(report.REPORT_NAME)
  run.record_wall_time(time.perf_counter() - t0)
  if run.writer:
    print(f"{run.path} is finished ({epochs} epochs); written again from its "
          f"{'final checkpoint' if missing else 'files'}: {', '.join(written) or 'nothing'}",
          flush=True)
  return RunResult(workdir=run.path, metrics=records, scores=scores)


def out_of_time(config, t0: float, epoch: int, record: dict[str, Any],
                eval_seconds: float) -> bool:
  """Whether the call stops after `epoch` (0-based, just trained) for max_wall_time_s: when
  this epoch's due evaluation and one more epoch like it (training time from `record`, the
  evaluation as long as the last one, `eval_seconds`) would end past the limit, counted from
  `t0`. Process 0's clock decides for every process."""
  limit = float(config.max_wall_time_s)
  if limit <= 0:
    return False
  every = int(config.eval_every)
  ahead = (eval_seconds * ((epoch + 1) % every == 0) + float(record.get("train_time_s", 0.0))
           + eval_seconds * ((epoch + 2) % every == 0))
  return bool(hosts.broadcast(time.perf_counter() - t0 + ahead > limit))


def terminate_requested() -> bool:
  """At an epoch boundary: whether a SIGTERM arrived (`signals`); with several processes
  process 0's flag decides for all (a collective), so that every process stops together."""
  if hosts.multiprocess():
    return bool(hosts.broadcast(int(signals.requested())))
  return signals.requested()


def _where(progress: dict[str, Any], config) -> str:
  if progress.get("trained"):
    return (f"after the last trained epoch ({progress['checkpoint']}, checkpointed) while "
            "writing scores.npz, the plots and the report; rerun the same command to write them "
            "(nothing is trained again)")
  if not progress.get("epoch"):
    return ("before training started (nothing was trained); rerun the same command")
  del config
  if progress.get("partial"):
    rows, num_rows = progress["partial"]
    return (f"at epoch {progress['epoch']} after {rows} of its {num_rows} steps (checkpointed "
            "there); rerun the same command to resume from that step")
  resume = (f"from the checkpoint of epoch {progress['checkpoint']}" if progress["checkpoint"]
            else "from the start: no checkpoint had been written yet")
  return f"at epoch {progress['epoch']}; rerun the same command to resume ({resume})"


def terminated_message(progress: dict[str, Any], config) -> str:
  return (f"terminated by SIGTERM {_where(progress, config)}; the workdir's lock is released")


@contextlib.contextmanager
def interrupt_message(progress: dict[str, Any], config=None):
  """Ctrl-C inside the block becomes `Interrupted` and a SIGTERM `Terminated`, naming
  progress["epoch"] (being trained) and progress["checkpoint"] (the epoch a rerun resumes
  from), or that training had ended (progress["trained"]: the files were being written)."""
  try:
    yield
  except KeyboardInterrupt:
    if progress.get("trained") or not progress.get("epoch"):
      raise Interrupted(f"interrupted {_where(progress, config)}") from None
    raise Interrupted(f"interrupted at epoch {progress['epoch']}; rerun the same command to "
                      f"resume (from the checkpoint of epoch {progress['checkpoint']})") from None
  except signals.Terminated:
    raise Terminated(terminated_message(progress, config)) from None


def collect_scores(setup, features, evaluators, state, split) -> dict[str, np.ndarray]:
  """scores.npz columns (`runs.scores_file` documents them): per replica, then combined."""
  per_replica = []
  for replica in setup.replicas.unstack(state):
    tables = hosts.fetch({"train": setup.tracker.summarize(replica.train_stats),
                          "eval_train": setup.tracker.summarize(replica.eval_stats["train"]),
                          "test": setup.tracker.summarize(replica.eval_stats["test"])})
    columns = scores_file.columns(tables, setup.dataset)
    for evaluator in evaluators:
      columns.update(evaluator.scores(setup, replica, columns))
    columns["train/active"] = np.asarray(hosts.fetch(replica.active))
    for feature in features:
      columns.update(feature.scores(setup, replica))
    per_replica.append(columns)
  scores = (per_replica[0] if not setup.replicas.on
            else scores_file.combine_replicas(per_replica))
  scores["train/weight"] = np.asarray(hosts.fetch(split["weight"]))
  return scores
