"""Study 4: Kobayashi et al. (2020)'s demo: removing the most harmful training examples, by
turn-over influence, lowers the validation loss.

Setup (Kobayashi et al.'s demo, docs/definitions.md): MNIST, 3,000 training / 200 validation examples (the validation set is
`test_subset=200` of the MNIST test split, so it plays the "test" role in the loop), bias-free
MLP 784-768-768-768-10 with turn-over dropout p = 0.5 on every hidden layer, SGD lr 0.01
momentum 0.9 weight decay 0.01, batch 32, 40 epochs.

Per scoring seed s:
  1. the turn-over run (seed s) ends with `turnover.influence_targets='test'`: influence.npz
     holds `train/total_influence`, the sum over the 200 validation targets z of
     L(z; 1 - m_i) - L(z; m_i); negative = training on i raised the validation loss (harmful);
  2. for each k in `ks` the k most harmful examples (most negative total), or k random ones
     (`removals`; "helpful" removes the most positive), are removed;
  3. every reduced set, and the full set (k = 0), is retrained from scratch with each seed of
     `retrain_seeds` (same config, turn-over on, no influence pass), and the final validation
     loss (full network, eval mode) is compared with the full set's for the same retrain seed.

`mean influence of removed` = mean over the removed examples of total_influence / (number of
validation targets): how strongly, per target, the removed examples were estimated to act.
Claim checked: for each k, removing the most harmful examples lowers the mean validation loss
below the full set's, and below removing k random examples (paired over seeds; "within seed
noise" when a mean change is not larger than its std over the runs).
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from regularity_jax.studies import figures
from regularity_jax.studies import subruns
from regularity_jax.studies.errors import StudyError
from regularity_jax.studies.report import Report
from regularity_jax.studies.report import mean_std_rows
from regularity_jax.training import setup as training_setup

REMOVALS = ("harmful", "random", "helpful")


def removal_ids(ids: np.ndarray, total_influence: np.ndarray, k: int, removal: str,
                seed: int) -> np.ndarray:
  """The k ids to remove: most negative total influence ("harmful"), most positive
  ("helpful"), or a seeded random choice ("random")."""
  ids, total = np.asarray(ids), np.asarray(total_influence, np.float64)
  if k > len(ids):
    raise StudyError(f"k={k} is more than the {len(ids)} training examples; lower --config.ks")
  if removal == "harmful":
    return ids[np.argsort(total, kind="stable")[:k]]
  if removal == "helpful":
    return ids[np.argsort(-total, kind="stable")[:k]]
  if removal == "random":
    return np.random.default_rng(seed).choice(ids, size=k, replace=False)
  raise StudyError(f"unknown removal {removal!r}; choose from {REMOVALS}")


def run(config, workdir) -> pathlib.Path:
  """Runs study 4 into `workdir`; returns the report path."""
  for r in config.removals:
    if r not in REMOVALS:
      raise StudyError(f"unknown removal {r!r} in --config.removals; choose from {REMOVALS}")
  workdir = pathlib.Path(workdir)
  runs = subruns.SubRuns(workdir)
  report = Report(workdir, "Turn-over influence: removing harmful training examples",
                  seeds=tuple(config.seeds) + tuple(config.retrain_seeds))
  report.preformatted(__doc__.split("\n\n", 1)[1])
  rows: list[dict[str, Any]] = []
  first = True
  for seed in config.seeds:
    seed = int(seed)
    score_config = subruns.derive_config(config.base, {
        "data_dir": subruns.data_dir_for(config, config.base.dataset), "seed": seed,
        "turnover.enabled": True, "turnover.influence_targets": "test"})
    scored = runs.run(f"influence_seed{seed}", score_config)
    influence = subruns.read_influence(scored)
    ids, total = influence["train/example_id"], influence["train/total_influence"]
    num_targets = len(influence["test/example_id"])
    dataset = training_setup.load_data(score_config)
    retrain = subruns.derive_config(score_config, {
        "turnover.influence_targets": "none",
        "eval_every": int(config.retrain_eval_every or score_config.num_epochs)})
    for rseed in config.retrain_seeds:
      rseed = int(rseed)
      cfg = subruns.derive_config(retrain, {"seed": rseed})
      full = runs.run_on_subset(f"s{seed}_full_r{rseed}", cfg, dataset, ids,
                                data_name=f"s{seed}_full")
      full_loss = subruns.final_metric(full, "test_loss")
      rows.append({"k": 0, "removed": "none", "score_seed": seed, "retrain_seed": rseed,
                   "val_loss": full_loss, "delta_loss": 0.0, "influence_removed": float("nan"),
                   "val_acc": subruns.final_metric(full, "test_accuracy")})
      for k in config.ks:
        for removal in config.removals:
          removed = removal_ids(ids, total, int(k), removal, seed=1000 * seed + int(k))
          keep = np.setdiff1d(ids, removed)
          result = runs.run_on_subset(f"s{seed}_{removal}{k}_r{rseed}", cfg, dataset, keep,
                                      data_name=f"s{seed}_{removal}{k}")
          loss = subruns.final_metric(result, "test_loss")
          rows.append({"k": int(k), "removed": removal, "score_seed": seed,
                       "retrain_seed": rseed, "val_loss": loss, "delta_loss": loss - full_loss,
                       "influence_removed": float(total[np.isin(ids, removed)].mean()
                                                  / num_targets),
                       "val_acc": subruns.final_metric(result, "test_accuracy")})
    if first:
      first = False
      report.heading("Influence of the training examples on the validation set")
      report.paragraph(
          f"Scoring run seed {seed}: final validation loss "
          f"{subruns.final_metric(scored, 'test_loss'):.4f}, accuracy "
          f"{subruns.final_metric(scored, 'test_accuracy'):.4f}; {int((total < 0).sum())} of "
          f"{len(total)} training examples have a negative total influence (harmful); total "
          f"influence ranges {total.min():.2f} to {total.max():.2f} (sum over "
          f"{num_targets} targets).")
      fig, axes = figures.subplots(1, width=4.5, height=3.0)
      figures.group_histogram(axes[0], total, {"all": np.ones(len(total), bool)}, bins=60,
                              xlabel="total influence on the validation loss")
      report.figure(fig, "total_influence_histogram.png",
                    "Total influence of each training example (negative = harmful)")
      worst = removal_ids(ids, total, min(16, len(ids)), "harmful", 0)
      pos = np.array([np.flatnonzero(dataset.train.ids == i)[0] for i in worst])
      fig = figures.image_grid(dataset.train.images[pos],
                               [f"y={dataset.train.labels[p]} {total[p]:.1f}" for p in pos],
                               suptitle="most harmful training examples (label, total influence)")
      report.figure(fig, "most_harmful.png", "The 16 most harmful training examples")

  b = config.base
  report.note("setup", (
      f"{b.dataset}: {b.train_subset or 'all'} training / {b.test_subset or 'all'} validation "
      f"examples; model {b.model} {b.model_kwargs.to_dict()}; turn-over rate {b.turnover.rate}; "
      f"{b.optimizer} lr {b.learning_rate} momentum {b.momentum} weight decay "
      f"{b.weight_decay}, batch {b.batch_size}, {b.num_epochs} epochs; k in {tuple(config.ks)}; "
      f"scoring seeds {tuple(config.seeds)}, retrain seeds {tuple(config.retrain_seeds)}"))
  report.note("runs", runs.summary())
  report.heading("Validation loss after removal (mean ± std over retrain and scoring seeds)")
  report.table(mean_std_rows(rows, ("k", "removed"),
                             ("val_loss", "delta_loss", "influence_removed", "val_acc")),
               headers={"delta_loss": "val_loss - full (paired)",
                        "influence_removed": "mean influence of removed (per target)"})
  report.heading("Every run")
  report.table(rows, formats={"val_loss": ".4f", "delta_loss": "+.4f",
                              "influence_removed": "+.4f", "val_acc": ".3f"})
  report.heading("Claim")
  verdicts = []
  for k in config.ks:
    deltas = {r: np.array([x["delta_loss"] for x in rows if x["k"] == k and x["removed"] == r])
              for r in config.removals}
    if "harmful" in deltas:
      d = deltas["harmful"]
      spread = d.std(ddof=1) if len(d) > 1 else 0.0
      ref, vs_random = "", ""
      beats_random = True
      if "random" in deltas:  # paired: same scoring and retrain seed
        hr = d - deltas["random"]
        hr_spread = hr.std(ddof=1) if len(hr) > 1 else 0.0
        beats_random = hr.mean() < 0 and not (len(hr) > 1 and abs(hr.mean()) <= hr_spread)
        ref = (f"; random removed {deltas['random'].mean():+.4f}; paired harmful - random "
               f"{hr.mean():+.4f} ± {hr_spread:.4f}")
        if hr.mean() < 0 and not beats_random:
          vs_random = " (lower than random removal only within seed noise)"
      verdict = ("within seed noise" if len(d) > 1 and abs(d.mean()) <= spread else
                 "held" if d.mean() < 0 and beats_random else
                 f"did not hold{vs_random}")
      verdicts.append(f"k={k}: change of the validation loss with the most harmful removed "
                      f"{d.mean():+.4f} ± {spread:.4f} (std over {len(d)} runs){ref} -> claim "
                      f"{verdict}")
  report.bullets(verdicts)

  fig, axes = figures.subplots(1, width=4.5, height=3.2)
  ax = axes[0]
  for removal in config.removals:
    xs, means, stds = [0], [0.0], [0.0]
    for k in config.ks:
      d = [x["delta_loss"] for x in rows if x["k"] == k and x["removed"] == removal]
      xs.append(k)
      means.append(np.mean(d))
      stds.append(np.std(d))
    ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=f"{removal} removed")
  ax.axhline(0, color="gray", lw=0.8)
  ax.set(xlabel="k training examples removed", ylabel="validation loss - full set",
         title="retrained after removal")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  report.figure(fig, "val_loss_change_vs_k.png", "Change of the validation loss (mean ± std)")
  return report.write()
