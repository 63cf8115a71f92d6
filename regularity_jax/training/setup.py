"""What a run needs before its first step: data, model, mesh, tracker, and the initial state.

  setup = Setup.create(config, features)     # loads data; features read their inputs
  state = setup.initial_state()              # replicas stacked, on the devices

`Setup` is read-only after `create`; everything that changes lives in the `TrainState`.
`load_data` and `build_model` are public: notebooks and studies use them to look at a run's
data and model.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Sequence

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from regularity_jax import data
from regularity_jax import metrics
from regularity_jax import models
from regularity_jax.data import batching
from regularity_jax.training import hosts
from regularity_jax.training import inputs
from regularity_jax.training import optimizers
from regularity_jax.training import parts
from regularity_jax.training import sharding
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.replicas import Replicas
from regularity_jax.training.state import STREAM_INIT
from regularity_jax.training.state import TrainState


def _load(config, base_dir=None) -> data.Dataset:
  """The dataset of `config` as loaded (0 = all examples): a catalog name from local files, TFDS
  or generated; a path, a TFDS name or a dataset function (`data.sources`)."""
  common = dict(train_subset=config.train_subset or None,
                test_subset=config.test_subset or None, subset_seed=config.subset_seed,
                permute_pixels_seed=permute_pixels_seed(config))
  kind = data.sources.kind(config.dataset)
  size = tuple(config.tfds.get("image_size", ()))
  if size and kind != "tfds":
    raise data.DataError(
        f"tfds.image_size={size} resizes the images of a TFDS builder given by name; "
        f"dataset {config.dataset!r} is a {kind} dataset: resize its images in its files (or "
        "its function) and set --config.tfds.image_size='()'")
  if kind == "function":
    kwargs = config.get("dataset_kwargs")
    return data.load_function(parts.dataset_function(config, base_dir), config.dataset,
                              kwargs.to_dict() if kwargs is not None else {}, **common)
  return data.load_dataset(config.dataset, config.data_dir or None,
                           tfds_options=data.TfdsOptions(
                               data_dir=config.tfds.data_dir or None,
                               manual_dir=config.tfds.manual_dir or None,
                               download=bool(config.tfds.download), image_size=size),
                           check_release=True, **common)


def load_data(config, base_dir=None) -> data.Dataset:
  """The dataset of `config` (`_load`) with its pixels permuted (`permute_pixels.*`; absent in
  configs of older runs: not permuted), subset, corrupted, a holdout taken out (`holdout.*`),
  AUM's threshold samples relabelled (`aum_threshold.set`). Data given a catalog name are
  checked against its release (`data.releases`)."""
  try:
    dataset = _load(config, base_dir)
  except data.DataError as e:
    text = str(e)
    if "or None for the full split" not in text:
      raise
    raise data.DataError(text.replace("or None for the full split", "or 0 for the full split")
                         .replace("pass a value", "set a value")) from None
  dataset = data.corrupt(dataset, config.corruption.kind, config.corruption.fraction,
                         config.corruption.seed)
  holdout = config.holdout
  dataset = data.hold_out(dataset, fraction=float(holdout.fraction), folds=int(holdout.folds),
                          fold=int(holdout.fold), seed=int(holdout.seed))
  if int(config.aum_threshold.set):
    dataset = data.add_threshold_samples(dataset, int(config.aum_threshold.set),
                                         int(config.aum_threshold.seed))
  return dataset


def permute_pixels_seed(config) -> int | None:
  """The seed of the run's pixel permutation, None when its pixels are not permuted."""
  block = config.get("permute_pixels")
  return int(block["seed"]) if block is not None and block["enabled"] else None


def model_kwargs(config) -> dict[str, Any]:
  kwargs = config.model_kwargs.to_dict()
  if config.turnover.enabled:
    kwargs.setdefault("turnover_sites", tuple(config.turnover.sites))
    kwargs.setdefault("turnover_rate", float(config.turnover.rate))
  return kwargs


def _user_model(part: parts.ModelPart, config, dataset: data.Dataset, key: jax.Array, dtype):
  """Builds a user part by the contract: constructor arguments by name, its own RNG streams
  seeded from `key`, its `TurnOverSite` layers switched on as `turnover.*` says."""
  kwargs = config.model_kwargs.to_dict()
  if config.turnover.enabled:
    accepted = inspect.signature(part.cls).parameters if callable(part.cls) else {}
    for arg, value in (("turnover_sites", tuple(config.turnover.sites)),
                       ("turnover_rate", float(config.turnover.rate))):
      if arg in accepted:
        kwargs.setdefault(arg, value)
  kwargs = models.contract.constructor_kwargs(
      part.cls, num_classes=dataset.num_classes, example_shape=dataset.example_shape,
      dtype=dtype, rngs=nnx.Rngs(jax.random.fold_in(key, 1), params=key), model_kwargs=kwargs,
      name=config.model)
  model = part.cls(**kwargs)
  if not isinstance(model, nnx.Module):
    models.contract.check_class(model, config.model)
    raise models.contract.ContractError(
        f"model {config.model!r} built a {type(model).__name__}, not an nnx.Module "
        "(docs/your_model.md)")
  if config.turnover.enabled:
    models.turnover.configure_sites(model, tuple(config.turnover.sites),
                                    float(config.turnover.rate))
  return model


def build_model(config, dataset: data.Dataset, key: jax.Array):
  """Creates the model named by the config; returns (graphdef, params, model_state)."""
  dtype = jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32
  part = parts.model_part(config)
  try:
    if part.builtin:
      model = models.create_model(config.model, num_classes=dataset.num_classes,
                                  example_shape=dataset.example_shape,
                                  rngs=nnx.Rngs(params=key), dtype=dtype, **model_kwargs(config))
    else:
      model = _user_model(part, config, dataset, key, dtype)
    return models.split(model)
  except models.contract.ContractError as e:
    raise ConfigError(str(e)) from None
  except (TypeError, ValueError) as e:
    raise ConfigError(f"cannot build model {config.model!r}: {e}") from None


def check_turnover(config, graphdef, params, model_state, dataset: data.Dataset) -> None:
  """ConfigError unless turn-over masks reach the model's forward pass: it has sites, and its
  own and flipped sub-networks give different logits on the first 8 training examples."""
  model = models.merge(graphdef, params, model_state)
  if not graphdef.style.turnover and not models.turnover.sites(model):
    raise ConfigError(f"turnover.enabled=True, but model {config.model!r} has no turn-over site; "
                      "place regularity_jax.models.TurnOverSite('<name>') layers where the masks "
                      "should act (docs/your_model.md) or set --config.turnover.enabled=False")
  x, ids = jnp.asarray(dataset.train.images[:8]), jnp.asarray(dataset.train.ids[:8])
  key = jax.random.key_data(jax.random.key(0))
  own, flipped = (models.apply(graphdef, params, model_state, x, train=False,
                               turnover=models.TurnOver(key, ids, mode))[0]
                  for mode in ("own", "flipped"))
  if np.array_equal(np.asarray(own), np.asarray(flipped)):
    raise ConfigError(f"turnover.enabled=True, but model {config.model!r} gives the same logits "
                      "with its own and its flipped masks on a probe batch: its turn-over sites "
                      "(or its `turnover` argument) do not act on the forward pass; call each "
                      "TurnOverSite on the features (docs/your_model.md)")


def margin_layout(config, graphdef, params, model_state, dataset: data.Dataset):
  """The margin normalizer's `models.norms.Layout` of the model (derived from its layers, or
  declared on its class); ConfigError naming what to declare when neither tells."""
  if "margins" not in config.tracking.kernels or config.margins.normalizer == "none":
    return models.norms.Layout(last_layer=(), bn_epsilon=None, folds=())
  try:
    return models.norms.derive_layout(models.merge(graphdef, params, model_state), params,
                                      dataset.num_classes)
  except models.norms.LayoutError as e:
    raise ConfigError(f"margins.normalizer={config.margins.normalizer}: {e}") from None


def split_arrays(split: data.Split) -> dict[str, np.ndarray]:
  """A split as the on-device dict the steps gather batches from."""
  return {"image": split.images, "label": split.labels, "id": split.ids,
          "weight": np.ones(len(split), np.float32)}


@dataclasses.dataclass
class Setup:
  """The fixed inputs of a run.

  Attributes:
    config: the validated config.
    features: the enabled features (`features.enabled_features`), in hook order.
    dataset: host arrays of both splits.
    replicas: the seed axis.
    mesh, replicated, rows: the device mesh, its replicated sharding and the sharding of
      [steps, batch] matrices (rows sharded along the data axis).
    tracker: the metric kernels, over an id space that holds both splits' ids.
    graphdef: the model's static structure.
    tx, schedule: the unit-rate optimizer and the schedule in full-run steps.
    steps_per_epoch: optimizer steps of a full epoch.
    pipeline: where batches come from (`inputs.DeviceInput` or `inputs.StreamInput`).
    train_split, test_split: the splits' columns on the devices ({image, label, id, weight};
      stream mode: {weight}, the examples stream from the host, `inputs`).
    train_ids, test_ids: i32[n] on the devices.
    eval_rows: {"train", "test"}: (positions, mask) of the evaluation batches, on the devices.
    initial_active: bool[n_train] rows an epoch may draw from at the start.
    first_model: (params, model_state) of replica 0, built with the graphdef.
    margin_layout: what the margin normalizer needs of the model (`models.norms.Layout`).
    constrain_statistics: the layout of the tracker states inside a step:
      `sharding.Replicated`, or with `shard_statistics` `sharding.IdSharded` (the tracker's id
      space is then padded to a multiple of the devices).
  """
  config: Any
  features: Sequence[Any]
  dataset: data.Dataset
  replicas: Replicas
  mesh: jax.sharding.Mesh
  replicated: jax.sharding.NamedSharding
  rows: jax.sharding.NamedSharding
  tracker: metrics.Tracker
  graphdef: Any
  tx: Any
  schedule: Any
  steps_per_epoch: int
  pipeline: Any
  train_split: dict
  test_split: dict
  train_ids: jax.Array
  test_ids: jax.Array
  eval_rows: dict
  initial_active: np.ndarray
  first_model: tuple
  constrain_statistics: Any = None
  margin_layout: Any = None

  @property
  def n_train(self) -> int:
    return len(self.dataset.train)

  @property
  def id_space(self) -> int:
    return self.tracker.num_examples

  def put(self, tree):
    """Host values -> replicated on the mesh (on every process's devices: `hosts.put`)."""
    return hosts.put(tree, self.replicated)

  @classmethod
  def create(cls, config, features) -> "Setup":
    """Loads the data and lets every feature read its inputs (e.g. another run's scores):
    whatever is wrong with them surfaces here, before the run directory is claimed."""
    dataset = load_data(config)
    if config.augment and len(dataset.example_shape) != 3:
      raise ConfigError(
          f"augment=True crops and flips images [H, W, C], but {config.dataset} has examples of "
          f"shape {dataset.example_shape}; set --config.augment=False")
    mesh = sharding.make_mesh(config.num_devices)
    sharding.check_batch_size(config.batch_size, mesh)
    sharding.check_batch_size(config.eval_batch_size, mesh, "eval_batch_size")
    replicated = sharding.replicated(mesh)
    rows = sharding.batch_sharded(mesh, axis=1)
    id_space = int(max(dataset.train.ids.max(initial=-1), dataset.test.ids.max(initial=-1))) + 1
    constrain = sharding.Replicated(mesh)
    if config.shard_statistics:  # N/D rows per device: pad N up to a multiple of D
      id_space = sharding.padded_examples(id_space, mesh)
      constrain = sharding.IdSharded(mesh, id_space)
    steps_per_epoch = batching.num_steps(len(dataset.train), config.batch_size)
    train_arrays = split_arrays(dataset.train)
    active = np.ones(len(dataset.train), bool)
    for feature in features:
      active = feature.initial_active(dataset, active)
      train_arrays["weight"] = feature.initial_weights(dataset, train_arrays["weight"])
    graphdef, params, model_state = build_model(
        config, dataset, jax.random.fold_in(jax.random.key(int(config.seed)), STREAM_INIT))
    if config.turnover.enabled:
      check_turnover(config, graphdef, params, model_state, dataset)
    layout = margin_layout(config, graphdef, params, model_state, dataset)
    if config.gradient_reduction == "fixed_order" and jax.tree.leaves(model_state):
      raise ConfigError(f"gradient_reduction=fixed_order takes each device's gradient apart, "
                        f"which batch norm (in {config.model}) does not allow; set "
                        "--config.gradient_reduction=all_reduce or use a model without it")
    eval_rows = {name: hosts.put(batching.eval_batches(len(split), config.eval_batch_size), rows)
                 for name, split in (("train", dataset.train), ("test", dataset.test))}
    pipeline = inputs.make(config, dataset)
    return cls(
        config=config, features=tuple(features), dataset=dataset,
        replicas=Replicas(int(config.num_seeds)), mesh=mesh, replicated=replicated, rows=rows,
        tracker=metrics.Tracker(id_space, kernels=tuple(config.tracking.kernels)),
        graphdef=graphdef, tx=optimizers.make_optimizer(config),
        schedule=optimizers.make_schedule(config, steps_per_epoch),
        steps_per_epoch=steps_per_epoch, pipeline=pipeline,
        train_split=hosts.put(pipeline.device_split(train_arrays), replicated),
        test_split=hosts.put(pipeline.device_split(split_arrays(dataset.test)), replicated),
        train_ids=hosts.put(dataset.train.ids, replicated),
        test_ids=hosts.put(dataset.test.ids, replicated),
        eval_rows=eval_rows, initial_active=active, first_model=(params, model_state),
        constrain_statistics=constrain, margin_layout=layout)

  def initial_state(self) -> TrainState:
    """The state at epoch 0: replica k initialized from seed `config.seed + k`."""
    states = [self._replica_state(int(self.config.seed) + k) for k in range(self.replicas.count)]
    state = self.replicas.stack(states)
    if not isinstance(self.constrain_statistics, sharding.IdSharded):
      return self.put(state)
    stats = {"train_stats": state.train_stats, "eval_stats": state.eval_stats}
    placement = sharding.statistics_placement(self.mesh, stats, self.id_space,
                                              axis=1 if self.replicas.on else 0)
    stats = hosts.put(stats, placement)
    return self.put(state.replace(train_stats=None, eval_stats=None)).replace(**stats)

  def _replica_state(self, seed: int) -> TrainState:
    run_key = jax.random.key(seed)
    if seed == int(self.config.seed):
      params, model_state = self.first_model
    else:
      _, params, model_state = build_model(self.config, self.dataset,
                                           jax.random.fold_in(run_key, STREAM_INIT))
    features = {}
    for feature in self.features:
      feature_state = feature.init_state(self)
      if feature_state is not None:
        features[feature.name] = feature_state
    return TrainState(
        step=jnp.zeros((), jnp.int32), epoch=jnp.zeros((), jnp.int32), params=params,
        model_state=model_state, opt_state=self.tx.init(params),
        clock=optimizers.init_clock(self.config, self.steps_per_epoch, self.n_train),
        key=jax.random.key_data(run_key), active=jnp.asarray(self.initial_active),
        train_stats=self.tracker.init(),
        eval_stats={"train": self.tracker.init(), "test": self.tracker.init()},
        features=features)
