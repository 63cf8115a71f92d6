"""The trained model of a finished sub-run, read back from its checkpoint: logits and GraNd.

The loop writes scores.npz from its running statistics, but two numbers of the selection
studies need the model itself: GraNd (`||grad_params loss(x, y)||_2`, Paul et al. 2021; the
loop does not track it) and the confidence of the predicted class (the expected calibration
error needs max_c softmax(logits)_c, which no running statistic keeps).

  model = final_model.load(config, run_dir)          # the last checkpoint (or `epoch=`)
  logits = final_model.predict(model, model.dataset.test.images)        # f32[T, C]
  grand = final_model.grand(model, model.dataset.train.images,
                            model.dataset.train.labels)                  # f32[N]

Both run the full network in eval mode (batch norm with its running statistics, no dropout,
no turn-over mask). `load` rebuilds the model that `config` describes and fills it with the
checkpoint's parameters, matched by their path in the parameter tree.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from regularity_jax import data
from regularity_jax import metrics
from regularity_jax import models
from regularity_jax.runs import Checkpointer
from regularity_jax.sweeps.errors import StudyError
from regularity_jax.training import setup as training_setup


@dataclasses.dataclass
class FinalModel:
  """A trained model as the pure functional pieces of `regularity_jax.models.apply`.

  Attributes:
    graphdef: static structure; params / model_state: plain nested dicts of arrays.
    dataset: the data the run trained on (`training_setup.load_data(config)`: subset and corruption).
    epoch: the epoch of the checkpoint read.
  """
  graphdef: Any
  params: Any
  model_state: Any
  dataset: data.Dataset
  epoch: int


def _fill(template, restored, what: str):
  """`template`'s tree with each leaf taken from `restored` at the same path (Orbax stores
  integer dict keys as strings)."""

  def leaf(path, _):
    node = restored
    for entry in path:
      key = getattr(entry, "key", getattr(entry, "idx", None))
      if isinstance(node, dict) and key not in node:
        key = str(key)
      try:
        node = node[key]
      except (KeyError, IndexError, TypeError):
        raise StudyError(f"the checkpoint's {what} has no entry {jax.tree_util.keystr(path)}: "
                         "was it written with another model config?") from None
    return jnp.asarray(node)

  return jax.tree_util.tree_map_with_path(leaf, template)


def load(config, run_dir: str | os.PathLike, *, epoch: int | None = None,
         dataset: data.Dataset | None = None, replica: int | None = None) -> FinalModel:
  """The model of the run of `config` in `run_dir`, from its checkpoint of `epoch` (default
  the last one). `dataset` skips reloading the data when the caller has it already. A run
  with num_seeds = K > 1 stacks its replicas: `replica` k in [0, K) picks seed seed + k."""
  directory = pathlib.Path(run_dir) / "checkpoints"
  if not directory.is_dir():
    raise StudyError(f"{directory} does not exist: the run has no checkpoint to read")
  num_seeds = int(config.num_seeds)
  if num_seeds != 1 and not (replica is not None and 0 <= replica < num_seeds):
    raise StudyError(f"the run has num_seeds={num_seeds}: pass replica=k in [0, {num_seeds}) "
                     "to final_model.load")
  checkpointer = Checkpointer(directory)
  try:
    last = checkpointer.latest_epoch()
    epoch = last if epoch is None else int(epoch)
    if epoch is None or not (directory / str(epoch)).is_dir():  # Orbax: one folder per step
      raise StudyError(f"no checkpoint of epoch {epoch} in {directory}; set checkpoint_every "
                       "and keep_checkpoints of the run so that it is kept")
    restored = checkpointer.restore(None, epoch=epoch)
  finally:
    checkpointer.close()
  dataset = dataset if dataset is not None else training_setup.load_data(config)
  graphdef, params, model_state = training_setup.build_model(config, dataset, jax.random.key(0))
  if num_seeds != 1:
    restored = jax.tree.map(lambda x: np.asarray(x)[replica],
                            {k: restored[k] for k in ("params", "model_state")})
  return FinalModel(graphdef=graphdef,
                    params=_fill(params, restored["params"], "params"),
                    model_state=_fill(model_state, restored["model_state"], "model_state"),
                    dataset=dataset, epoch=int(epoch))


def _batched(fn, arrays: dict[str, np.ndarray], batch_size: int) -> np.ndarray:
  """Runs jitted `fn(batch) -> f32[B, ...]` over fixed-size batches (the last one padded)."""
  n = len(next(iter(arrays.values())))
  out = []
  for start in range(0, n, batch_size):
    chunk = {k: v[start:start + batch_size] for k, v in arrays.items()}
    size = len(next(iter(chunk.values())))
    if size < batch_size:
      chunk = {k: np.concatenate([v, np.repeat(v[-1:], batch_size - size, axis=0)])
               for k, v in chunk.items()}
    out.append(np.asarray(jax.device_get(fn(chunk)))[:size])
  return np.concatenate(out) if out else np.zeros((0,), np.float32)


def predict(model: FinalModel, images: np.ndarray, *, batch_size: int = 1000) -> np.ndarray:
  """Logits f32[N, C] of `images` f32[N, *example_shape] (eval mode, full network)."""

  @jax.jit
  def logits(batch):
    out, _ = models.apply(model.graphdef, model.params, model.model_state, batch["image"],
                          train=False)
    return out.astype(jnp.float32)

  return _batched(logits, {"image": np.asarray(images, np.float32)},
                  min(batch_size, max(len(images), 1)))


def grand(model: FinalModel, images: np.ndarray, labels: np.ndarray, *,
          batch_size: int = 250, chunk_size: int | None = None) -> np.ndarray:
  """GraNd f32[N]: the L2 norm of the gradient of each example's cross-entropy with respect
  to all parameters (`regularity_jax.metrics.grand`), at the checkpoint's parameters.

  Args:
    images: f32[N, *example_shape]; labels: int[N] (the labels the run trained on).
    batch_size: examples per jitted call; chunk_size: examples vectorized at once inside it
      (bounds memory at chunk_size x num_params floats; None = the whole batch).
  """

  def loss_fn(params, example):
    logits, _ = models.apply(model.graphdef, params, model.model_state, example["image"][None],
                             train=False)
    return metrics.losses.cross_entropy(logits, example["label"][None])[0]

  @jax.jit
  def norms(batch):
    return metrics.grand(loss_fn, model.params, batch, chunk_size=chunk_size)

  size = min(batch_size, max(len(images), 1))
  if chunk_size is not None:
    size = max(chunk_size, size - size % chunk_size)
  return _batched(norms, {"image": np.asarray(images, np.float32),
                          "label": np.asarray(labels, np.int32)}, size).astype(np.float32)
