"""The train state: one pytree holding everything a run needs to resume exactly."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training. A pure pytree (no Python-side state), so it can
  be jitted, donated, checkpointed, sharded and vmapped over seeds (`replicas`).

  Attributes:
    step: i32[] optimizer steps taken.
    epoch: i32[] completed epochs.
    params: model parameters (plain nested dict).
    model_state: batch-norm statistics (plain nested dict, may be empty).
    opt_state: optax state (of the unit-rate optimizer, `optimizers.make_optimizer`).
    clock: `optimizers.Clock`, where the learning-rate schedule stands (it follows epochs).
    key: u32[2] raw PRNG key of the run; per-step and per-example keys fold into it.
    active: bool[n_train] training rows an epoch may draw from (static pruning sets it at the
      start, dynamic reduction changes it).
    train_stats: metric-tracker state of the presentation stream (training split).
    eval_stats: {"train": ..., "test": ...} tracker states of the evaluation stream.
    features: the typed state of each feature that keeps one, under the feature's name
      (`features.selective_backprop.SBState`, `estimators.turnover.TurnOverState`); only the
      feature's own module reads or writes its entry.
  """
  step: jnp.ndarray
  epoch: jnp.ndarray
  params: Any
  model_state: Any
  opt_state: Any
  clock: Any
  key: jnp.ndarray
  active: jnp.ndarray
  train_stats: Any
  eval_stats: Any
  features: Any = flax.struct.field(default_factory=dict)

  def rng(self, *path: int) -> jax.Array:
    """A typed key derived from the run key by folding in `path` (stream tags, step, id)."""
    key = jax.random.wrap_key_data(self.key)
    for p in path:
      key = jax.random.fold_in(key, p)
    return key


# Tags of the independent random streams (fold_in the run key with these first).
STREAM_INIT, STREAM_DATA_ORDER, STREAM_STEP, STREAM_TURNOVER = 0, 1, 2, 3
