"""rho_loss: Mindermann et al. 2022 (arXiv 2206.07137), reducible holdout loss selection.

Before the first epoch an irreducible-loss (IL) model is trained on the holdout split only
(`holdout.fraction` > 0: every method of a comparison then trains on the same rest), for
`prioritization_options.rho_il_epochs` epochs, with the run's optimizer at a constant
learning rate; its model is `rho_il_model` ('' = the run's model) with `rho_il_model_kwargs`
('' model: the run's model_kwargs). Its eval-mode loss on every training example,
L(y | x; holdout), is computed once (`selection.irreducible`). Each step then forwards a chunk
of `rho_candidates` x B examples in eval mode and backpropagates the B with the highest
reducible loss, L(y | x; model) - L(y | x; holdout), the paper's selection rule (their default
and ours: B out of 10 x B, so an epoch backpropagates a tenth of the training split). Points the model already fits (low training loss) and points nobody can fit (noise:
high irreducible loss) are both skipped. Fixed shapes: the chunk, the top-B and the epoch
plan have the same shapes every epoch, so nothing recompiles.

The IL losses ride along in the training split (`split["irreducible"]`, f32[n_train]); they
are recomputed (bit for bit: pure functions of the run's keys) when a run resumes.
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
import optax

from regularity_jax.selection import irreducible
from regularity_jax.training import optimizers
from regularity_jax.training import programs
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.features.prioritization.base import Prioritization
from regularity_jax.training.features.prioritization.base import shuffled_plan
from regularity_jax.training.features.prioritization.selective_backprop import make_selection_step

STREAM_IRREDUCIBLE = 7  # the IL model's keys: fold_in(run key, 7)


class RhoLoss(Prioritization):
  name = "rho_loss"
  reads = ("prioritization", "augment", "crop_padding", "holdout")
  # Its irreducible-loss model is built and trained like the run's model: from the whole
  # config (`il_config(setup.config)`), the one part that reads beyond its view.

  replicas_differ = True

  @classmethod
  def validate(cls, config) -> None:
    options = config.prioritization_options
    if not (float(config.holdout.fraction) > 0 or int(config.holdout.folds) >= 2):
      raise ConfigError("prioritization=rho_loss trains its irreducible-loss model on a "
                        "holdout split; set e.g. --config.holdout.fraction=0.1")
    if int(options.rho_il_epochs) < 1:
      raise ConfigError(f"prioritization_options.rho_il_epochs={options.rho_il_epochs} must be "
                        ">= 1 (epochs of the irreducible-loss model on the holdout split)")
    if int(options.rho_candidates) < 1:
      raise ConfigError(f"prioritization_options.rho_candidates={options.rho_candidates} must "
                        "be >= 1 (candidates per backpropagated example; the paper: 10)")

  def plan(self, setup, state, epoch) -> dict:
    width = self.config.batch_size * self.config.prioritization_options.rho_candidates
    return shuffled_plan(setup, state, epoch, width)

  def build(self, setup, core) -> None:
    super().build(setup, core)
    self.irreducible = setup.put(jnp.asarray(irreducible_losses(setup)))
    config = self.config
    batch_size = config.batch_size

    def select(state, batch, losses):
      reducible = jnp.where(batch["mask"], losses - batch["irreducible"], -jnp.inf)
      _, order = jax.lax.top_k(reducible, batch_size)
      return state, order, batch["mask"][order]

    step = make_selection_step(core.train_step, setup.graphdef, select,
                               augment_images=config.augment, crop_padding=config.crop_padding)
    self._step = programs.jit("rho_step", setup.replicas.lift(step, shared=("split",)),
                              donate_argnums=(0, 1))

  def epoch_split(self, setup, state, epoch: int, split: dict) -> dict:
    return {**split, "irreducible": self.irreducible}

  def step_program(self, core, epoch: int):
    return self._step

  def scores(self, setup, state) -> dict[str, np.ndarray]:
    return {"train/irreducible_loss": np.asarray(jax.device_get(self.irreducible))}


def il_config(config):
  """The run's config with the irreducible-loss model's model and kwargs."""
  options = config.prioritization_options
  out = copy.deepcopy(config)
  if options.rho_il_model:
    out.model = options.rho_il_model
    out.model_kwargs = copy.deepcopy(options.rho_il_model_kwargs)
  elif len(options.rho_il_model_kwargs):
    out.model_kwargs = copy.deepcopy(options.rho_il_model_kwargs)
  out.schedule, out.turnover.enabled = "constant", False
  return out


def irreducible_losses(setup) -> np.ndarray:
  """f32[n_train]: the IL model's loss on every training row (module docstring)."""
  from regularity_jax.training.setup import build_model  # pylint: disable=g-import-not-at-top
  config, dataset = setup.config, setup.dataset  # the IL model is built like the run's
  cfg = il_config(config)
  key = jax.random.fold_in(jax.random.key(int(config.seed)), STREAM_IRREDUCIBLE)
  graphdef, params, model_state = build_model(cfg, dataset, jax.random.fold_in(key, 0))
  tx = optax.chain(optimizers.make_optimizer(cfg), optax.scale(float(cfg.learning_rate)))
  params, model_state = irreducible.train(
      graphdef, params, model_state, tx, dataset.holdout.images, dataset.holdout.labels,
      epochs=int(config.prioritization_options.rho_il_epochs), batch_size=int(config.batch_size),
      key=jax.random.fold_in(key, 1), progress=bool(config.progress_bar))
  return irreducible.irreducible_losses(graphdef, params, model_state, dataset.train.images,
                                        dataset.train.labels, int(config.eval_batch_size),
                                        setup.pipeline.transfer_batches)
