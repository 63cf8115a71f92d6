"""holdout: a part of the training split kept out of training (`holdout.*`, `data.partitions`).

The split is taken out when the data load (`setup.load_data`), so every other part of the run
sees only the rest. This feature measures the held-out examples: at every evaluation the
eval-mode loss and accuracy on them (`holdout_loss`, `holdout_accuracy` in metrics.jsonl), and
at the end their softmax probabilities, out of sample by construction, in scores.npz:

  holdout/example_id, holdout/label, holdout/original_label, holdout/corrupted   [n_holdout]
  holdout/prob                                    f32[n_holdout, C] (with num_seeds: [K, n, C])

With `holdout.folds=K`, the K runs of folds 0..K-1 together give an out-of-sample probability
for every training example: `estimators.label_issues.cross_validated_probs` assembles them.
"""

from __future__ import annotations

import jax
import numpy as np

from regularity_jax import data
from regularity_jax.metrics.losses import cross_entropy
from regularity_jax.selection import irreducible
from regularity_jax.training.features.base import Feature


def holdout_enabled(config) -> bool:
  return float(config.holdout.fraction) > 0 or int(config.holdout.folds) >= 2


class Holdout(Feature):
  name = "holdout"
  phase = "data"
  block = "holdout"
  reads = ("eval_batch_size",)

  @classmethod
  def enabled(cls, config) -> bool:
    return holdout_enabled(config)

  def change_dataset(self, dataset):
    holdout = self.config.holdout
    return data.hold_out(dataset, fraction=float(holdout.fraction), folds=int(holdout.folds),
                         fold=int(holdout.fold), seed=int(holdout.seed))

  def _probs(self, setup, state) -> np.ndarray:
    split = setup.dataset.holdout
    logits = irreducible.logits_in_batches(setup.graphdef, state.params, state.model_state,
                                           split.images, int(self.config.eval_batch_size),
                                           setup.pipeline.transfer_batches)
    return np.asarray(jax.nn.softmax(logits, axis=-1), np.float32)

  def after_evaluation(self, setup, state, record, epoch, run):
    labels = setup.dataset.holdout.labels
    losses, correct = [], []
    for replica in setup.replicas.unstack(state):
      probs = self._probs(setup, replica)
      losses.append(float(np.mean(cross_entropy(np.log(np.maximum(probs, 1e-30)), labels))))
      correct.append(float(np.mean(np.argmax(probs, -1) == labels)))
    record["holdout_loss"], record["holdout_accuracy"] = float(np.mean(losses)), float(
        np.mean(correct))
    return state

  def scores(self, setup, state) -> dict[str, np.ndarray]:
    split = setup.dataset.holdout
    return {"holdout/example_id": split.ids, "holdout/label": split.labels,
            "holdout/original_label": split.original_labels, "holdout/corrupted": split.corrupted,
            "holdout/prob": self._probs(setup, state)}
