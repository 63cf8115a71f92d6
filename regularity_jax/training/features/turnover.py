"""Turn-over dropout (ideas C and D; Kobayashi et al. 2020, Liu, Lin, Jaggi 2021).

Every training example i owns a dropout mask m_i from `fold_in(fold_in(key, site), id)` at the
model's turn-over sites (`turnover.sites`, rate `turnover.rate`) and trains only m_i. Every
evaluation then scores each training example with its own and its flipped sub-network
(`estimators.turnover`; the "turnover" evaluator), and the run ends with their columns in
scores.npz and, with `turnover.influence_targets=test`, influence.npz: for every test example the
k most helpful and most harmful training examples, and each training example's total influence.
With `turnover.label_issues=True` (needs cleanlab) the flipped sub-network's out-of-sample
probabilities go to cleanlab (`estimators.label_issues`): train/label_issue_turnover (bool) and
train/label_quality_turnover (f32, lower = more likely mislabeled) in scores.npz.

State: `estimators.turnover.TurnOverState` (`TrainState.features["turnover"]`), written by the
feature's evaluator `TurnOverPass` and read by `scores` and `finish`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from regularity_jax.estimators import detection
from regularity_jax.estimators import label_issues
from regularity_jax.estimators import turnover as turnover_estimator
from regularity_jax.metrics import seeds
from regularity_jax.training import hosts
from regularity_jax.training import programs
from regularity_jax.training import steps
from regularity_jax.training.evaluator_base import Evaluator
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.features.base import Feature
from regularity_jax.training.features.base import choice
from regularity_jax.training.state import STREAM_TURNOVER


class TurnOver(Feature):
  name = "turnover"
  phase = "model"
  block = "turnover"
  switch = "turnover.enabled"

  @classmethod
  def validate(cls, config) -> None:
    choice("turnover.influence_targets", config.turnover.influence_targets, ("none", "test"))
    if config.turnover.influence_targets != "none" and not cls.enabled(config):
      raise ConfigError("turnover.influence_targets needs --config.turnover.enabled=True")
    if cls.enabled(config) and not 0.0 < float(config.turnover.rate) < 1.0:
      raise ConfigError(f"turnover.rate={config.turnover.rate} must be in (0, 1)")
    if config.turnover.label_issues:
      if not cls.enabled(config):
        raise ConfigError("turnover.label_issues needs --config.turnover.enabled=True")
      try:
        label_issues._cleanlab()  # pylint: disable=protected-access
      except ImportError as e:
        raise ConfigError(f"turnover.label_issues=True: {e}") from None

  @classmethod
  def replica_clash(cls, config) -> str | None:
    return ("turnover.influence_targets" if config.turnover.influence_targets != "none"
            else None)

  def program_options(self):
    return {"turnover": True}  # each example trains its own sub-network (steps.make_train_step)

  def init_state(self, setup):
    return turnover_estimator.init(setup.id_space, setup.dataset.num_classes)

  def scores(self, setup, state) -> dict[str, np.ndarray]:
    out = turnover_estimator.scores_from_state(state.features[self.name],
                                               setup.dataset.train.ids)
    if self.config.turnover.label_issues:
      issues, quality = label_issues.find_label_issues(setup.dataset.train.labels,
                                                       out["train/flipped_prob"])
      out["train/label_issue_turnover"] = issues
      out["train/label_quality_turnover"] = quality
    return out

  def final_files(self) -> tuple[str, ...]:
    return ("influence.npz",) if self.config.turnover.influence_targets == "test" else ()

  def finish(self, setup, state, run) -> None:
    if self.config.turnover.influence_targets != "test":
      return
    config, dataset = self.config, setup.dataset
    fn = programs.jit("influence", lambda params, model_state, key, ids, x, y: (
        turnover_estimator.influence_on_targets(
        setup.graphdef, params, model_state, key, ids, x, y, top_k=config.turnover.influence_top_k,
        block_size=config.turnover.influence_block)))
    out = jax.device_get(fn(state.params, state.model_state, state.rng(STREAM_TURNOVER),
                            jnp.asarray(dataset.train.ids), jnp.asarray(dataset.test.images),
                            jnp.asarray(dataset.test.labels)))
    run.save_npz("influence.npz", {
        "train/example_id": dataset.train.ids, "train/total_influence": out["total"],
        "test/example_id": dataset.test.ids, "test/helpful_ids": out["helpful_ids"],
        "test/helpful": out["helpful"], "test/harmful_ids": out["harmful_ids"],
        "test/harmful": out["harmful"]})


class TurnOverPass(Evaluator):
  """The turn-over feature's evaluator (brought by it: `evaluators.owned_evaluators`): own and
  flipped sub-network passes over the training split, into the feature's own state."""
  name = "turnover"
  requires = "turn-over dropout: set --config.turnover.enabled=True"

  @classmethod
  def applies(cls, config) -> bool:
    return bool(config.turnover.enabled)

  def build(self, setup, core) -> None:
    pass_ = steps.make_turnover_evaluate(setup.graphdef)

    def evaluate_turnover(state, split, positions, mask, rows=None):
      return pass_(state.params, state.model_state, state.rng(STREAM_TURNOVER),
                   state.features["turnover"], split, positions, mask, rows)

    self._pass = programs.jit("evaluate_turnover", setup.replicas.lift(
        evaluate_turnover, shared=("split", "positions", "mask", "rows")))

  def __call__(self, setup, core, state, record):
    for chunk in setup.pipeline.eval_chunks(setup, "train", setup.train_split):
      state = state.replace(features={**state.features, "turnover": self._pass(state, *chunk)})
    stats = state.features["turnover"]
    summarize = (turnover_estimator.summarize if not setup.replicas.on
                 else jax.vmap(turnover_estimator.summarize))
    table = hosts.fetch(summarize(stats))
    if setup.replicas.on:
      table = seeds.combine(table)
    train = setup.dataset.train
    record.update({
        "train_memorization_mean": float(np.nanmean(table["memorization"][train.ids])),
        "train_memorization_loss_mean": float(np.nanmean(table["memorization_loss"][train.ids])),
        "train_generalization_error_mean": float(np.nanmean(
            table["generalization_error"][train.ids]))})
    # Label corruptions: what a detector can find is a changed label (random_labels redraws
    # from all classes, so about 1/C keep theirs); image corruptions: the corrupted flag.
    flags = train.labels != train.original_labels
    if not flags.any():
      flags = train.corrupted
    if flags.any() and not flags.all():
      record["memorization_auroc_corrupted"] = detection.auroc(
          table["memorization_loss"][train.ids], flags)
    return state
