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

State: `estimators.turnover.TurnOverState` (`TrainState.features["turnover"]`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from regularity_jax.estimators import label_issues
from regularity_jax.estimators import turnover as turnover_estimator
from regularity_jax.training import programs
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.features.base import Feature
from regularity_jax.training.features.base import choice
from regularity_jax.training.state import STREAM_TURNOVER


class TurnOver(Feature):
  name = "turnover"
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
