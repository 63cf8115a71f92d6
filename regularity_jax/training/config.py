"""Default config of the main job and its validation.

Every experiment config in `experiments/configs/` starts from `default_config()` and overrides
fields; any field can be set from the command line with `--config.<field>=<value>`.

Fields:
  dataset           a catalog name from regularity_jax.data.DATASETS (mnist1d needs no
                    download); or your own data, its classes, class names and shapes from the
                    data (docs/your_data.md): a path to an .npz or an image folder, a TFDS
                    image-classification builder's name, or a dataset function
                    'package.module:fn' / 'path/to/file.py:fn' (relative: from the config
                    file's folder), fn(split, **dataset_kwargs); a run records such a function
                    and the sha256 of its file in config.json (dataset_source). Every run
                    records a DataIdentity in scores.npz's provenance; data given a catalog
                    name that are not its release are refused (regularity_jax.data.releases)
  dataset_kwargs    keyword arguments of a dataset function
  data_dir          '' loads through tensorflow-datasets (or generates mnist1d); a directory
                    loads the same dataset from local files (IDX, CIFAR archive, image folder, npz)
  tfds.data_dir     TFDS's data directory ('' = $TFDS_DATA_DIR or ~/tensorflow_datasets); prepared
                    data there are read by their file format (array_record without TensorFlow)
  tfds.manual_dir   TFDS's manual-download directory ('' = TFDS's default)
  tfds.download     let TFDS download and prepare data not prepared yet (needs network and
                    TensorFlow: pip install -e '.[tfds]'); offline, a one-line error at once
  tfds.image_size   (H, W): resize every image of a TFDS builder given by name to H x W as it
                    is read (Pillow's bilinear filter, antialiased when shrinking); needed for
                    builders whose images vary in size, refused for other datasets; () = as is
  train_subset      0 = all; n = a seeded class-stratified subset of n training examples
  test_subset       0 = all; likewise for the test split
  subset_seed       seed of the subset choice
  model             a built-in from regularity_jax.models.MODELS, or any Flax NNX model as
                    'package.module:Class' or 'path/to/file.py:Class' (relative: from the config
                    file's folder; docs/your_model.md). A run records where such a model was
                    found and the sha256 of its file in config.json (model_source), and a
                    resume with changed code is refused. From Python a class object (e.g. one
                    defined in a notebook cell) goes to train_and_evaluate(config, workdir,
                    model=Class): config.model becomes 'module:QualifiedName' ('__main__:Net'
                    for a cell's) and model_source the sha256 of its class source
  allow_changed_model_code  resume a run whose model code (model_source.sha256) changed; the
                    change is recorded in the run directory (model_code_changes.jsonl, and
                    config.json then names the new code). Resume-neutral; default False
  model_kwargs      keyword arguments of that model (e.g. hidden=(256, 256) for mlp)
  dtype             compute dtype, 'float32' or 'bfloat16' (parameters stay float32)
  num_epochs        epochs of training
  batch_size        global batch size; must be a multiple of the number of devices
  eval_batch_size   batch size of the evaluation passes
  optimizer         sgd | adam | adamw; learning_rate, momentum, nesterov, weight_decay
  schedule          constant | multistep (lr_milestones in epochs, lr_gamma) | cosine;
                    warmup_epochs of linear warmup. Schedules follow the epoch
                    (schedule_clock='epoch': the learning rate at step j of epoch e is the
                    schedule at e + j / steps of that epoch), so a pruned, reduced or
                    prioritized run has the full run's learning rate at the same epoch;
                    schedule_clock='examples' follows the number of examples backpropagated
                    instead (in units of the full training split)
  augment           random crop (crop_padding pixels) + flip on the device, for images
  seed              seed of initialization, data order, dropout and augmentation
  num_seeds         K replicas with seeds seed..seed+K-1 trained in one program (vmap over a
                    leading replica axis); scores.npz holds seed-combined and per-seed scores
                    (regularity_jax.training.seeds). Not with reduction, Selective-Backprop,
                    InfoBatch, noise_aware, running weighting or influence targets (their
                    per-replica step counts or weights would differ).
  eval_every        evaluate the full train and test splits every this many epochs (and at
                    the last epoch); the evaluation stream feeds the test-split statistics
  max_wall_time_s   0 = no limit; else each call trains no further epoch once another one
                    (judged by the last epoch's training and evaluation times) would end past
                    this many seconds from the call's start, data loading and compilation
                    included: the epoch it stops at is evaluated and checkpointed, scores.npz
                    holds the scores so far, and rerunning the same command resumes (so a
                    rerun may set another limit). The first epoch of a call always trains
  checkpoint_every  checkpoint every this many epochs (and at the last epoch)
  keep_checkpoints  how many of the latest checkpoints to keep
  num_devices       0 = all devices (data parallel over a 1-D mesh; with several processes,
                    every process's devices: then only 0)
  shard_statistics  shard the per-example statistics (the tracker states of the presentation
                    and evaluation streams) along the example-id axis over the mesh: each
                    device holds N/D rows instead of all N (N padded up to a multiple of the
                    D devices; the padding rows are never written). Same numbers as the
                    replicated state (integers identical, floats within 1e-6); docs/scaling.md
  gradient_reduction  all_reduce (default: XLA's all-reduce of the devices' partial gradients,
                    whose order of additions depends on the topology, so 1 process of 4
                    devices and 2 processes of 2 differ in the last bit and, over a long run,
                    in a few statistics) | fixed_order (each device's gradient is taken apart,
                    all-gathered and summed in device order: the same bits on any topology of
                    the same device count, D times the gradient's memory per device; models
                    without batch norm, no turn-over). regularity_jax.training.sharding
  distributed.coordinator_address, distributed.num_processes, distributed.process_id
                    multi-process runs, one process per host (regularity_jax.training.hosts):
                    process 0's HOST:PORT, the number of processes and this one's index;
                    distributed.enabled=True with those empty takes them from the cluster's
                    environment (TPU pods, SLURM, Open MPI); distributed.initialization_timeout
                    in seconds. Process 0 writes the run directory's files; every process
                    writes its part of the checkpoints. Default training only (no features)
  scan_epoch        run each epoch as one device program (lax.fori_loop over the steps):
                    faster for small models where per-step dispatch dominates; the progress bar
                    then moves once per epoch. Selective-Backprop epochs always step on the host.
  epoch_plan        permutation (default: jax.random.permutation of the training split, which
                    sorts N keys on every device) | bijection (a keyed Feistel permutation
                    evaluated position by position, so each device and host computes only its
                    own columns of the plan and nothing of size N: regularity_jax.data.bijection;
                    another order than permutation's; for prioritization uniform,
                    selective_backprop and rho_loss, without pruning or reduction).
                    docs/scaling.md
  input_pipeline    device (default: both splits on every device) | stream (the examples stay on
                    the host and stream to the devices row by row of the same epoch plans, with
                    grain; same numbers; refuses scan_epoch). regularity_jax.training.inputs
  stream.threads, stream.prefetch   stream mode: reading threads, rows prefetched to the devices
  holdout.fraction  hold a class-stratified share of the training split out of training
                    (after corruption; `data.partitions`): RHO-LOSS's irreducible-loss model
                    trains on it, and every method of a comparison trains on the same rest;
                    holdout.folds = K >= 2 holds out fold holdout.fold of a K-fold partition
                    instead (cross-validation); holdout.seed. The holdout split's eval-mode
                    probabilities are in scores.npz (holdout/prob) at the end of the run
  aum_threshold.set 0 = off; 1 or 2: AUM's threshold samples (Pleiss et al. 2020): N // (C + 1)
                    training examples of set 1 or 2 (disjoint, from aum_threshold.seed) get a
                    fake extra class; scores.npz gets the 99th-percentile cutoff and the
                    mislabeled flags (train/aum_flag...), and its provenance says the run had
                    a fake class. aum_threshold.partner: the scores.npz of the run with the
                    other set; with it every training example gets a flag (train/aum_flag)
  permute_pixels.enabled  permute the pixel positions of every training and test image with one
                    fixed permutation drawn from permute_pixels.seed (Toneva et al.'s permuted
                    MNIST; regularity_jax.data.permutation); normalization statistics are those
                    of the permuted images; scores.npz records the seed and the permutation's
                    sha256, and scores of other pixels are refused (runs.scores_file)
  corruption.kind   none | symmetric | pair | random_labels | shuffled_pixels | gaussian_images
  corruption.fraction  fraction of training examples corrupted; corruption.seed its seed
  tracking.kernels  statistics tracked (regularity_jax.metrics.statistics): built-in kernels
                    (fed by every stream), or your own as 'package.module:Class' /
                    'path/to/file.py:Class' (docs/parts.md), options in tracking.<its name>
  turnover.enabled  turn-over dropout: each example trains only its own sub-network m_id; every
                    evaluation then also scores memorization and generalization error
  turnover.rate, turnover.sites   drop rate (0.5) and the model's sites carrying it ('all')
  turnover.influence_targets      'none' or 'test': at the end, the influence of every training
                    example on every test example (top-k lists and totals, influence.npz)
  turnover.influence_top_k, turnover.influence_block   k and training examples per block
  turnover.label_issues  cleanlab's label issues from the flipped sub-network's out-of-sample
                    probabilities (pip install -e '.[cleanlab]'): train/label_issue_turnover
  weighting.scheme  uniform | easy_first | hard_first | medium_first | self_paced
  weighting.score   a training-split score of regularity_jax.metrics.difficulty (forgetting,
                    cbtl, aum, el2n, loss, confidence, memorization, generalization_error...)
  weighting.scores_path  '' = the running state of this run (recomputed every epoch from
                    weighting.start_epoch on); a scores.npz path = a previous run's scores,
                    checked against this dataset (regularity_jax.runs.scores_file)
  weighting.allow_partial  accept a scores.npz that does not score every training example
                    of this run (those get the middle difficulty rank 0.5)
  weighting.temperature, weighting.pace_start, weighting.pace_end   see regularity_jax.weighting
  prioritization    uniform | selective_backprop | importance | infobatch | noise_aware |
                    rho_loss
  prioritization_options  their parameters: sb_beta, sb_history, candidates, is_smoothing,
                    is_reweight, infobatch_ratio, infobatch_anneal, noise_score, noise_fraction,
                    noise_warmup, rho_candidates, rho_il_model ('' = the run's model),
                    rho_il_model_kwargs,
                    rho_il_epochs (regularity_jax.training.features.prioritization documents
                    each)
  pruning.fraction_kept  static pruning before training: keep this fraction of the training
                    set by pruning.rule (regularity_jax.selection.pruning.RULES: hardest keeps
                    the hardest, i.e. removes the easiest first as Toneva et al. do) over
                    pruning.score (a training-split score of regularity_jax.metrics.difficulty,
                    or random) read from pruning.scores_path (a previous run's scores.npz,
                    checked against this dataset); pruning.seed; pruning.ties = random (a
                    permutation from pruning.seed) | stable (by position) breaks equal scores
  pruning.allow_partial  accept a scores.npz that does not score every training example
                    of this run (those rank after every scored one: kept last)
  margins.normalizer  frobenius_product (default: product of the BN-folded kernel norms) |
                    last_layer | none; divides the logit margins of every evaluation
  margins.quantiles number of quantiles of the training margin distribution logged per evaluation
  reduction.enabled dynamic training-set reduction (Banburski et al. 2021): once the training
                    accuracy of an evaluation reaches reduction.threshold ("separated"), train
                    only on the reduction.fraction of examples with the lowest margins,
                    re-selected every reduction.every epochs (a multiple of eval_every) from the
                    latest evaluation; reduction.by = margin | random (a same-size random
                    subset, redrawn at every re-selection); once started, reduction never returns
                    to the full set, even if a later evaluation is no longer separated
  evaluators        what every evaluation measures, by name or import path
                    (regularity_jax.training.evaluators documents each and its metrics.jsonl
                    keys): splits, summaries (every epoch); turn-over brings its turnover
                    evaluator and the margins kernel its margins one; one named here that does
                    not apply is refused in one line (docs/parts.md, docs/migration.md)
  features          user features, 'package.module:Class' / 'path/to/file.py:Class' (subclasses
                    of training.features.Feature; docs/parts.md), besides the built-in ones that
                    their blocks switch on
  progress_bar      tqdm progress bar on stderr
  plots             write PNG plots at the end of the run
  report            write report.html (grids of the examples each score ranks first and last,
                    the data map, the plots) and plots/grids/*.png at the end of the run
                    (regularity_jax.report); report_k examples per grid
  take_over_lock    take the workdir's run.lock over even though its holder may be alive (on
                    another host, with a fresh heartbeat): only when that run is known dead.
                    A dead holder on this host, this scheduler job requeued, or a heartbeat
                    older than 15 minutes is taken over without it (runs.directory)
  sigterm_grace_s   SIGTERM (a scheduler's preemption notice) stops the run at the next step
                    boundary, saves a mid-epoch checkpoint there (a rerun resumes from that
                    step, bit-identically), releases the lock and exits 143; if the boundary
                    and the save are not done in this many seconds, the run stops at once and
                    its line names the epoch a rerun resumes from (0 = no limit)
"""

from __future__ import annotations

import math
import numbers

import ml_collections

from regularity_jax import metrics
from regularity_jax import models
from regularity_jax import registry
from regularity_jax.data import CORRUPTIONS
from regularity_jax.data import DataError
from regularity_jax.data import sources
from regularity_jax.training import hosts
from regularity_jax.training import inputs
from regularity_jax.training import optimizers
from regularity_jax.training import parts
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.features.base import choice

DTYPES = ("float32", "bfloat16")
GRADIENT_REDUCTIONS = ("all_reduce", "fixed_order")
EPOCH_PLANS = ("permutation", "bijection")
# The prioritization methods whose plan is the shuffled epoch (`prioritization.base.shuffled_plan`).
SHUFFLED_PLANS = ("uniform", "selective_backprop", "rho_loss")


def default_config() -> ml_collections.ConfigDict:
  """Every field of the main job with its default (the module docstring documents each); a
  config file's `get_config()` starts from it and overrides fields."""
  c = ml_collections.ConfigDict()
  c.dataset = "mnist1d"
  c.dataset_kwargs = ml_collections.ConfigDict()
  c.data_dir = ""
  c.tfds = ml_collections.ConfigDict()
  c.tfds.data_dir = ""
  c.tfds.manual_dir = ""
  c.tfds.download = True
  c.tfds.image_size = ()
  c.train_subset = 0
  c.test_subset = 0
  c.subset_seed = 0
  c.model = "mlp"
  c.model_kwargs = ml_collections.ConfigDict()
  c.dtype = "float32"
  c.num_epochs = 10
  c.batch_size = 128
  c.eval_batch_size = 1000
  c.optimizer = "sgd"
  c.learning_rate = 0.1
  c.momentum = 0.9
  c.nesterov = False
  c.weight_decay = 0.0
  c.schedule = "constant"
  c.schedule_clock = "epoch"
  c.lr_milestones = ()
  c.lr_gamma = 0.1
  c.warmup_epochs = 0.0
  c.augment = False
  c.crop_padding = 4
  c.seed = 0
  c.num_seeds = 1
  c.eval_every = 1
  c.max_wall_time_s = 0.0
  c.allow_changed_model_code = False
  c.checkpoint_every = 1
  c.keep_checkpoints = 2
  c.num_devices = 0
  c.shard_statistics = False
  c.gradient_reduction = "all_reduce"
  c.distributed = ml_collections.ConfigDict({
      "coordinator_address": "", "num_processes": 0, "process_id": 0, "enabled": False,
      "initialization_timeout": 300})
  c.scan_epoch = False
  c.epoch_plan = "permutation"
  c.input_pipeline = "device"
  c.stream = ml_collections.ConfigDict({"threads": 2, "prefetch": 2})
  c.permute_pixels = ml_collections.ConfigDict({"enabled": False, "seed": 0})
  c.corruption = ml_collections.ConfigDict({"kind": "none", "fraction": 0.0, "seed": 0})
  c.holdout = ml_collections.ConfigDict({"fraction": 0.0, "folds": 0, "fold": 0, "seed": 0})
  c.aum_threshold = ml_collections.ConfigDict({"set": 0, "seed": 0, "partner": ""})
  c.tracking = ml_collections.ConfigDict({"kernels": tuple(metrics.KERNELS)})
  c.turnover = ml_collections.ConfigDict({
      "enabled": False, "rate": 0.5, "sites": ("all",), "influence_targets": "none",
      "influence_top_k": 10, "influence_block": 16, "label_issues": False})
  c.prioritization = "uniform"
  c.prioritization_options = ml_collections.ConfigDict({
      "sb_beta": 1.0, "sb_history": 1024, "candidates": 2,
      "is_smoothing": 0.1, "is_reweight": True, "infobatch_ratio": 0.5,
      "infobatch_anneal": 0.875, "noise_score": "forgetting", "noise_fraction": 0.2,
      "noise_warmup": 2, "rho_candidates": 10, "rho_il_model": "", "rho_il_epochs": 20,
      "rho_il_model_kwargs": ml_collections.ConfigDict()})
  c.pruning = ml_collections.ConfigDict({
      "scores_path": "", "score": "forgetting", "rule": "hardest", "fraction_kept": 1.0,
      "seed": 0, "num_bins": 50, "ties": "random", "allow_partial": False})
  c.margins = ml_collections.ConfigDict({"normalizer": "frobenius_product", "quantiles": 21})
  c.reduction = ml_collections.ConfigDict({
      "enabled": False, "fraction": 0.1, "every": 1, "threshold": 1.0, "by": "margin"})
  c.weighting = ml_collections.ConfigDict({
      "scheme": "uniform", "score": "forgetting", "scores_path": "", "temperature": 2.0,
      "start_epoch": 1, "pace_start": 0.3, "pace_end": 0.8, "allow_partial": False})
  c.features = ()  # user features by import path (docs/parts.md)
  c.evaluators = ("splits", "summaries")  # turnover, margins: brought by their owners
  c.progress_bar = True
  c.plots = True
  c.report = True
  c.report_k = 16
  c.take_over_lock = False
  c.sigterm_grace_s = 30.0
  return c


def validate(config, base_dir=None) -> None:
  """Raises ConfigError (one line: the problem and the fix) on any unusable field: the core
  fields here, each part's in its own `validate` (`training.features`, `training.evaluators`,
  `metrics.statistics`). Old spellings are first read as today's (`training.migration`).
  `base_dir`: where relative 'path/to/file.py:Name' parts are found (None: the current
  directory)."""
  from regularity_jax.training import evaluators  # pylint: disable=g-import-not-at-top
  from regularity_jax.training import features  # pylint: disable=g-import-not-at-top
  from regularity_jax.training import migration  # pylint: disable=g-import-not-at-top
  _check_shape(config)
  migration.translate(config)
  try:
    _validate(config, evaluators, features, base_dir)
  except registry.PartError as e:
    raise ConfigError(str(e)) from None
  except AttributeError as e:
    missing = _missing_field(e, config)
    if missing is None:
      raise
    raise ConfigError(
        f"the config has no field {missing!r}; the config file's get_config() must start from "
        "regularity_jax.training.default_config() and override fields (e.g. "
        "experiments/configs/quickstart.py)") from None


def _validate(config, evaluators, features, base_dir=None) -> None:
  try:
    sources.kind(config.dataset)
  except DataError as e:
    raise ConfigError(str(e)) from None
  parts.check_model_spec(config.model)
  choice("optimizer", config.optimizer, optimizers.OPTIMIZERS)
  choice("schedule", config.schedule, optimizers.SCHEDULES)
  choice("schedule_clock", config.schedule_clock, optimizers.CLOCKS)
  choice("dtype", config.dtype, DTYPES)
  choice("corruption.kind", config.corruption.kind, CORRUPTIONS)
  if config.margins.normalizer not in models.norms.NORMALIZERS:
    evaluators.normalizer(config.margins.normalizer, base_dir)
  for kernel in config.tracking.kernels:  # each built from its block, probed, its score known
    metrics.statistics.build(kernel, config, base_dir)
  evaluators.validate(config, base_dir)
  for field in ("num_epochs", "batch_size", "eval_batch_size", "eval_every", "checkpoint_every",
                "keep_checkpoints", "num_seeds", "report_k"):
    if int(config[field]) <= 0:
      raise ConfigError(f"{field}={config[field]} must be a positive integer; "
                        f"set --config.{field} to a value >= 1")
  max_wall = float(config.max_wall_time_s)
  if not math.isfinite(max_wall) or max_wall < 0:
    raise ConfigError(f"max_wall_time_s={config.max_wall_time_s} must be a finite number >= 0 "
                      "(0 = no limit); set e.g. --config.max_wall_time_s=180")
  for field in ("train_subset", "test_subset"):
    if int(config[field]) < 0:
      raise ConfigError(f"{field}={config[field]} is negative; set --config.{field}=0 for all "
                        "examples or a positive count")
  if not 0.0 <= float(config.corruption.fraction) <= 1.0:
    raise ConfigError(f"corruption.fraction={config.corruption.fraction} is outside [0, 1]; "
                      "set --config.corruption.fraction between 0 and 1")
  seed = config.permute_pixels.seed
  if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
    raise ConfigError(f"permute_pixels.seed={seed!r} must be a non-negative integer; set e.g. "
                      "--config.permute_pixels.seed=0")
  inputs.validate(config)
  hosts.check_fields(config)
  choice("gradient_reduction", config.gradient_reduction, GRADIENT_REDUCTIONS)
  if config.gradient_reduction == "fixed_order" and config.turnover.enabled:
    raise ConfigError("gradient_reduction=fixed_order does not combine with turnover.enabled "
                      "(per-example sub-networks); set --config.gradient_reduction=all_reduce")
  _check_epoch_plan(config)
  features.validate(config, base_dir)  # each part checks its own block, enabled or not
  if int(config.num_seeds) > 1:
    clashes = [c for c in (f.replica_clash(f.view(config)) for f in features.enabled_classes(
        config, base_dir)) if c]
    if clashes:
      raise ConfigError(f"num_seeds={config.num_seeds} cannot be combined with {', '.join(clashes)} "
                        "(per-replica step counts or weights would differ); use num_seeds=1")
  _check_numbers(config)


# Path fields: `~` and environment variables are expanded where a run starts (the shell does
# not expand `~` after `--config.data_dir=`); runs.directory does the same for the workdir.
PATH_FIELDS = ("data_dir", "tfds.data_dir", "tfds.manual_dir", "weighting.scores_path",
               "pruning.scores_path", "aum_threshold.partner")
SEED_FIELDS = ("subset_seed", "corruption.seed", "holdout.seed", "aum_threshold.seed",
               "pruning.seed", "permute_pixels.seed")
JAX_SEED_LIMIT = 2**32  # jax.random.key keeps the low 32 bits: 2**32 would be seed 0


def _get(config, dotted: str):
  value = config
  for name in dotted.split("."):
    value = value[name]
  return value


def _path_fields(config, fields):
  """(dotted name, the ConfigDict holding it, its name there, its value) of each of `fields`
  that `config` has."""
  for dotted in fields:
    parent, _, name = dotted.rpartition(".")
    try:
      holder = _get(config, parent) if parent else config
      value = holder[name]
    except (KeyError, AttributeError, TypeError):
      continue
    yield dotted, holder, name, value


def expand_paths(config) -> None:
  """Expands `~` and $VARIABLES in the path fields of `config` (in place; fields without them
  are left as they are, so that the config of an existing run still matches on resume)."""
  import os  # pylint: disable=g-import-not-at-top
  from regularity_jax.runs import directory  # pylint: disable=g-import-not-at-top
  for dotted, holder, name, value in _path_fields(config, PATH_FIELDS):
    if isinstance(value, str) and (value.startswith("~") or "$" in value):
      try:
        holder[name] = os.fspath(directory.expand_path(value, what=f"{dotted}"))
      except directory.RunDirectoryError as e:
        raise ConfigError(str(e).replace("pass the path", f"pass --config.{dotted}")) from None


def record_resolved_paths(config, cwd=None) -> None:
  """Records the absolute path of every relative path field (and of a dataset given by a
  relative path) in `config.resolved_paths` ({field with "_" for ".": absolute path}, so in
  config.json), beside the path as typed: the run says which files it read, and a resume from
  another directory, where the same relative path names other files, is refused. Nothing is
  added when every path is absolute or empty (those configs stay as they were)."""
  import os  # pylint: disable=g-import-not-at-top
  from regularity_jax import data  # pylint: disable=g-import-not-at-top
  cwd = os.getcwd() if cwd is None else os.fspath(cwd)
  resolved = {}
  fields = list(PATH_FIELDS)
  try:
    if data.sources.kind(config.dataset) == "path":
      fields.insert(0, "dataset")
  except data.DataError:
    pass  # validate's line
  for dotted, _, _, value in _path_fields(config, fields):
    if isinstance(value, str) and value and not os.path.isabs(value):
      resolved[dotted.replace(".", "_")] = os.path.normpath(os.path.join(cwd, value))
  if resolved:
    with config.unlocked():
      config.resolved_paths = resolved


def _check_shape(config) -> None:
  """A config file's get_config must return default_config() with overrides."""
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(
        f"the config is a {type(config).__name__}, not an ml_collections.ConfigDict; the "
        "config file's get_config() must return regularity_jax.training.default_config() "
        "with fields overridden (e.g. experiments/configs/quickstart.py)")


def _missing_field(error: AttributeError, config) -> str | None:
  """The default field that `config` lacks and whose absence raised `error`, else None."""
  import re  # pylint: disable=g-import-not-at-top
  from flax import traverse_util  # pylint: disable=g-import-not-at-top
  name = re.fullmatch(r"""["']*(\w+)["']*""", str(error).strip())
  if name is None:
    return None
  have = traverse_util.flatten_dict(config.to_dict(), sep=".")
  for dotted in traverse_util.flatten_dict(default_config().to_dict(), sep="."):
    parts_ = dotted.split(".")
    if name.group(1) in parts_:
      prefix = ".".join(parts_[:parts_.index(name.group(1)) + 1])
      if not any(k == prefix or k.startswith(prefix + ".") for k in have):
        return prefix
  return None


def _check_seeds(config) -> None:
  seed, count = config.seed, int(config.num_seeds)
  if (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0
      or seed + count - 1 >= JAX_SEED_LIMIT):
    top = JAX_SEED_LIMIT - count
    raise ConfigError(f"seed={seed!r} must be an integer in [0, {top}] (JAX keys keep 32 bits: "
                      f"a larger seed would silently be another seed's run); set e.g. "
                      "--config.seed=0")
  for dotted in SEED_FIELDS:
    try:
      value = _get(config, dotted)
    except (KeyError, AttributeError):
      continue
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
      raise ConfigError(f"{dotted}={value!r} must be a non-negative integer; set e.g. "
                        f"--config.{dotted}=0")


def _check_schedule(config) -> None:
  if config.schedule != "multistep":
    return
  gamma = float(config.lr_gamma)
  if not math.isfinite(gamma) or gamma < 0:
    raise ConfigError(f"lr_gamma={config.lr_gamma} must be a finite number >= 0 (the factor "
                      "of the learning rate at each milestone); e.g. --config.lr_gamma=0.1")
  milestones = [int(m) for m in config.lr_milestones]
  twice = sorted({m for m in milestones if milestones.count(m) > 1})
  if twice:
    raise ConfigError(
        f"lr_milestones={tuple(config.lr_milestones)} names epoch {twice[0]} more than once, "
        "which would step once there; list each epoch once (for a larger step at one "
        "milestone use a smaller lr_gamma)")


def _check_numbers(config) -> None:
  """Numeric fields that would otherwise fail late (after an epoch) or silently diverge."""
  learning_rate = float(config.learning_rate)
  if not math.isfinite(learning_rate) or learning_rate <= 0:
    raise ConfigError(f"learning_rate={config.learning_rate} must be a finite number > 0; "
                      "set e.g. --config.learning_rate=0.1")
  if not 0.0 <= float(config.momentum) < 1.0:
    raise ConfigError(f"momentum={config.momentum} must be in [0, 1) (at 1 or above the "
                      "updates grow without bound); set e.g. --config.momentum=0.9")
  weight_decay = float(config.weight_decay)
  if not math.isfinite(weight_decay) or weight_decay < 0:
    raise ConfigError(f"weight_decay={config.weight_decay} must be a finite number >= 0")
  if int(config.margins.quantiles) < 1:
    raise ConfigError(f"margins.quantiles={config.margins.quantiles} must be >= 1 (the points "
                      "of the margin distribution logged each evaluation); e.g. 21")
  temperature = float(config.weighting.temperature)
  if not math.isfinite(temperature) or temperature <= 0:
    raise ConfigError(f"weighting.temperature={config.weighting.temperature} must be a finite "
                      "number > 0 (self_paced divides by it); e.g. 2.0")
  _check_holdout(config.holdout)
  _check_seeds(config)
  _check_schedule(config)
  if int(config.crop_padding) < 0:
    raise ConfigError(f"crop_padding={config.crop_padding} must be >= 0")
  hidden = config.model_kwargs.get("hidden")
  if hidden is not None:
    widths = tuple(hidden) if isinstance(hidden, (tuple, list)) else (hidden,)
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
      raise ConfigError(f"model_kwargs.hidden={hidden!r} must be a non-empty tuple of positive "
                        "layer widths; e.g. --config.model_kwargs.hidden='(256, 256)'")


def _check_epoch_plan(config) -> None:
  choice("epoch_plan", config.epoch_plan, EPOCH_PLANS)
  if config.epoch_plan != "bijection":
    return
  if config.prioritization not in SHUFFLED_PLANS:
    raise ConfigError(f"epoch_plan=bijection shuffles the epochs of prioritization "
                      f"{', '.join(SHUFFLED_PLANS)}; prioritization={config.prioritization} "
                      "draws its own plan: set --config.epoch_plan=permutation")
  subset = ("pruning.fraction_kept" if float(config.pruning.fraction_kept) < 1.0 else
            "reduction.enabled" if config.reduction.enabled else None)
  if subset:
    raise ConfigError(f"epoch_plan=bijection presents the whole training split, while {subset} "
                      "trains on a subset (its batches would be mostly padding): set "
                      "--config.epoch_plan=permutation")


def _check_holdout(holdout) -> None:
  fraction, folds, fold = float(holdout.fraction), int(holdout.folds), int(holdout.fold)
  if not 0.0 <= fraction < 1.0:
    raise ConfigError(f"holdout.fraction={holdout.fraction} must be in [0, 1); e.g. 0.1")
  if folds < 0 or folds == 1:
    raise ConfigError(f"holdout.folds={holdout.folds} must be 0 (off) or >= 2 (K-fold)")
  if folds and fraction:
    raise ConfigError("holdout.fraction and holdout.folds both set; use one: a fraction, or "
                      "fold holdout.fold of holdout.folds")
  if folds and not 0 <= fold < folds:
    raise ConfigError(f"holdout.fold={holdout.fold} must be in [0, {folds}) for "
                      f"holdout.folds={folds}")
