"""Dynamic training-set reduction to the low-margin examples (Banburski et al. 2021).

After an evaluation whose eval-mode training accuracy reaches `reduction.threshold` (the data
are "separated"), training goes on with only the `reduction.fraction` of training examples with
the lowest logit margins of that evaluation (`reduction.by=random`: a same-size random subset,
the control), re-selected every `reduction.every` epochs from then on, always from the whole
training split. Once started it never returns to the full set. The subset changes
`TrainState.active` only: no program recompiles. The kept ids of each selection go to
`reduction/kept_ids_epoch_<E>.npy` in the run directory.

metrics.jsonl: `reduction_reselected` (bool) after every evaluation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from regularity_jax.training import programs
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.features.base import Feature
from regularity_jax.training.features.base import statistic_need
from regularity_jax.training.features.base import choice
from regularity_jax.training.state import STREAM_DATA_ORDER


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


class Reduction(Feature):
  name = "reduction"
  phase = "reduction"
  block = "reduction"
  reads = ("eval_every",)
  switch = "reduction.enabled"

  @classmethod
  def needs(cls, config):
    return [statistic_need("margins", "reduction.enabled")]

  @classmethod
  def validate(cls, config) -> None:
    cfg = config.reduction
    choice("reduction.by", cfg.by, ("margin", "random"))
    if not cls.enabled(config):
      return
    if not 0.0 < float(cfg.fraction) <= 1.0:
      raise ConfigError(f"reduction.fraction={cfg.fraction} must be in (0, 1]")
    if int(cfg.every) <= 0 or int(cfg.every) % int(config.eval_every):
      raise ConfigError(f"reduction.every={cfg.every} must be a positive multiple of "
                        f"eval_every={config.eval_every}: re-selection uses the latest evaluation")

  @classmethod
  def replica_clash(cls, config) -> str | None:
    return "reduction.enabled" if cls.enabled(config) else None

  def build(self, setup, core) -> None:
    cfg = self.config.reduction
    count = jnp.int32(max(1, round(cfg.fraction * setup.n_train)))

    def reselect(state, epoch):
      margins = state.eval_stats["train"]["margins"].last_margin[setup.train_ids]
      key = jax.random.fold_in(state.rng(STREAM_DATA_ORDER, 1), epoch)
      return select_lowest_margin(margins, count, key, cfg.by)

    self._reselect = programs.jit("reselect", reselect)

  def after_evaluation(self, setup, state, record: dict, epoch: int, run):
    cfg = self.config.reduction
    separated = record.get("eval_train_accuracy", 0.0) >= cfg.threshold
    started = not bool(jax.device_get(jnp.all(state.active)))
    if (started and (epoch + 1) % cfg.every) or (not started and not separated):
      record["reduction_reselected"] = False
      return state
    active = self._reselect(state, setup.put(np.int32(epoch)))
    kept = setup.dataset.train.ids[np.asarray(jax.device_get(active))]
    run.save_array(f"reduction/kept_ids_epoch_{epoch + 1:04d}.npy", kept.astype(np.int32))
    record["reduction_reselected"] = True
    return state.replace(active=active)
