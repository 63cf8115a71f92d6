"""aum_threshold: AUM's threshold samples (Pleiss et al. 2020), `--config.aum_threshold.set`.

With set s = 1 or 2, the N // (C + 1) training examples of threshold set s (disjoint sets from
`aum_threshold.seed`; `data.partitions`) get the fake class C and the model C + 1 outputs.
At the end, from the AUM of the presentation stream (`estimators.aum_threshold`):

  train/aum_threshold_sample   bool[n]  this run's threshold samples
  train/aum_threshold_flag     f32[n]   1 = flagged as mislabeled by this run, 0 = not,
                                        NaN = a threshold sample here (or never observed)
  aum_threshold/cutoff         f32[]    the 99th percentile of the threshold samples' AUM
  aum_threshold/set            i32[]    s
  train/aum_flag               f32[n]   with aum_threshold.partner (the scores.npz of the run
                                        with the other set): the flag over both runs, so every
                                        example has one (`estimators.aum_threshold.combine`)

With num_seeds = K, every seed flags by its own threshold samples: scores.npz holds the flags
of each seed (train/seed<k>/aum_threshold_flag), their mean, and aum_threshold/cutoff f32[K];
a partner needs num_seeds = 1. Every other score of such a run comes from a model with a fake
class; the provenance says so
(`fake_class`), and pruning or weighting from such a file warns.

  python -m experiments.main --config=experiments/configs/quickstart.py \
      --config.aum_threshold.set=1 --workdir=runs/aum1
  python -m experiments.main --config=experiments/configs/quickstart.py \
      --config.aum_threshold.set=2 --config.aum_threshold.partner=runs/aum1/scores.npz \
      --workdir=runs/aum2      # runs/aum2/scores.npz: train/aum_flag for every example
"""

from __future__ import annotations

import jax
import numpy as np

from regularity_jax import data
from regularity_jax.data import partitions
from regularity_jax.estimators import aum_threshold as estimator
from regularity_jax.runs import scores_file
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.features.base import Feature
from regularity_jax.training.features.base import statistic_need


class AumThreshold(Feature):
  name = "aum_threshold"
  phase = "data"
  block = "aum_threshold"
  # (needs the margins kernel's AUM: `needs`)
  switch = "aum_threshold.set"

  def change_dataset(self, dataset):
    return data.add_threshold_samples(dataset, int(self.config.aum_threshold.set),
                                      int(self.config.aum_threshold.seed))

  @classmethod
  def needs(cls, config):
    return [statistic_need("margins", "aum_threshold", "the AUM of ")]

  @classmethod
  def validate(cls, config) -> None:
    options = config.aum_threshold
    if int(options.set) not in (0, 1, 2):
      raise ConfigError(f"aum_threshold.set={options.set} must be 0 (off), 1 or 2 (the "
                        "threshold set: two runs with sets 1 and 2 flag every example)")
    if options.partner and not int(options.set):
      raise ConfigError("aum_threshold.partner needs --config.aum_threshold.set=1 or 2")

  @classmethod
  def replica_clash(cls, config) -> str | None:
    # Each seed flags by its own threshold samples' AUM (per-seed columns, and the combined
    # flag is the share of seeds that flag); a partner file's combined flags are not per seed.
    return "aum_threshold.partner" if config.aum_threshold.partner else None

  def initial_active(self, dataset, active):
    """Reads and checks the partner's scores.npz before the run directory is claimed."""
    self.partner = None
    path = self.config.aum_threshold.partner
    if path:
      what = "aum_threshold.partner"
      scores = scores_file.load(path, what=what)
      scores_file.check_matches(scores, dataset, what=what)
      theirs = scores.provenance.get("fake_class") or {}
      mine = {"set": int(self.config.aum_threshold.set),
              "seed": int(self.config.aum_threshold.seed)}
      if theirs.get("seed") != mine["seed"] or theirs.get("set") not in ({1, 2} - {mine["set"]}):
        raise ConfigError(f"{what} {path} is not the other threshold set of this run (it has "
                          f"fake_class {theirs or None}, this run set {mine['set']} seed "
                          f"{mine['seed']}); pass the scores.npz of the run with "
                          f"--config.aum_threshold.set={3 - mine['set']} and the same seed")
      if not np.array_equal(np.sort(scores["train/example_id"]), np.sort(dataset.train.ids)):
        raise ConfigError(f"{what} {path} scores other training examples than this run; both "
                          "runs need the same data, subset and holdout")
      self.partner = scores
    return active

  def scores(self, setup, state) -> dict[str, np.ndarray]:
    train = setup.dataset.train
    aum = np.asarray(jax.device_get(setup.tracker.summarize(state.train_stats)["aum"]))[train.ids]
    threshold = partitions.threshold_sample_mask(train.ids, setup.dataset.num_classes - 1,
                                                 int(self.config.aum_threshold.set),
                                                 int(self.config.aum_threshold.seed))
    out = {"train/aum_threshold_sample": threshold,
           "train/aum_threshold_flag": estimator.flags(aum, threshold),
           "aum_threshold/cutoff": np.float32(estimator.cutoff(aum, threshold)),
           "aum_threshold/set": np.int32(self.config.aum_threshold.set)}
    if self.partner is not None:
      position = {int(i): p for p, i in enumerate(self.partner["train/example_id"].tolist())}
      rows = np.array([position[int(i)] for i in train.ids.tolist()])
      out["train/aum_flag"] = estimator.combine(out["train/aum_threshold_flag"],
                                                self.partner["train/aum_threshold_flag"][rows])
    return out
