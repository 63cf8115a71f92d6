"""turnover_influence: Kobayashi et al. (2020)'s demo: removing the most harmful training examples, by
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

from typing import Any

import numpy as np

from regularity_jax.sweeps import figures
from regularity_jax.sweeps import subruns
from regularity_jax.sweeps.errors import StudyError
from regularity_jax.sweeps.report import Report
from regularity_jax.sweeps.report import mean_std_rows
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


TITLE = "Turn-over influence: removing harmful training examples"


def check(config) -> None:
  for r in config.removals:
    if r not in REMOVALS:
      raise StudyError(f"unknown removal {r!r} in --config.removals; choose from {REMOVALS}")


def _score_config(config, seed):
  return subruns.derive_config(config.base, {
      "data_dir": subruns.data_dir_for(config, config.base.dataset), "seed": seed,
      "turnover.enabled": True, "turnover.influence_targets": "test"})


def _retrain_runs(config, seed, influence):
  """(run name, shared data name, retrain seed, k, removal, kept ids) of one scoring seed."""
  ids, total = influence["train/example_id"], influence["train/total_influence"]
  for rseed in (int(r) for r in config.retrain_seeds):
    yield f"s{seed}_full_r{rseed}", f"s{seed}_full", rseed, 0, "none", ids
    for k in config.ks:
      for removal in config.removals:
        removed = removal_ids(ids, total, int(k), removal, seed=1000 * seed + int(k))
        yield (f"s{seed}_{removal}{k}_r{rseed}", f"s{seed}_{removal}{k}", rseed, int(k), removal,
               np.setdiff1d(ids, removed))


def sweep(config, runs) -> dict[str, Any]:
  """Per scoring seed: its run (`influence_seed<s>`), influence.npz (`influence_seed<s>/npz`),
  its data (`data_seed<s>`) and every retraining run."""
  records: dict[str, Any] = {}
  for seed in (int(s) for s in config.seeds):
    score_config = _score_config(config, seed)
    scored = records[f"influence_seed{seed}"] = runs.run(f"influence_seed{seed}", score_config)
    influence = records[f"influence_seed{seed}/npz"] = subruns.read_influence(scored)
    dataset = records[f"data_seed{seed}"] = training_setup.load_data(score_config)
    retrain = subruns.derive_config(score_config, {
        "turnover.influence_targets": "none",
        "eval_every": int(config.retrain_eval_every or score_config.num_epochs)})
    for name, data_name, rseed, _, _, keep in _retrain_runs(config, seed, influence):
      cfg = subruns.derive_config(retrain, {"seed": rseed})
      records[name] = runs.run_on_subset(name, cfg, dataset, keep, data_name=data_name)
  return records


def measure(config, records) -> dict[str, Any]:
  """rows: the validation loss of every retraining run and its change (paired with the full
  set of the same seeds); verdicts per k."""
  rows: list[dict[str, Any]] = []
  for seed in (int(s) for s in config.seeds):
    influence = records[f"influence_seed{seed}/npz"]
    ids, total = influence["train/example_id"], influence["train/total_influence"]
    num_targets = len(influence["test/example_id"])
    full_loss = None
    for name, _, rseed, k, removal, keep in _retrain_runs(config, seed, influence):
      result = records[name]
      loss = subruns.final_metric(result, "test_loss")
      if removal == "none":
        full_loss = loss
      removed = ~np.isin(ids, keep)
      rows.append({"k": k, "removed": removal, "score_seed": seed, "retrain_seed": rseed,
                   "val_loss": loss, "delta_loss": loss - full_loss,
                   "influence_removed": (float(total[removed].mean() / num_targets)
                                         if removed.any() else float("nan")),
                   "val_acc": subruns.final_metric(result, "test_accuracy")})
  return {"rows": rows, "verdicts": _verdicts(config, rows)}


def _verdicts(config, rows) -> list[str]:
  verdicts = []
  for k in config.ks:
    deltas = {r: np.array([x["delta_loss"] for x in rows if x["k"] == k and x["removed"] == r])
              for r in config.removals}
    if "harmful" not in deltas:
      continue
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
  return verdicts


def report(config, records, measured, report: Report, runs) -> None:
  rows = measured["rows"]
  report.add_seeds(config.retrain_seeds)
  _influence_section(config, records, report)
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
  report.bullets(measured["verdicts"])
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


def _influence_section(config, records, report):
  seed = int(config.seeds[0])
  scored, influence = records[f"influence_seed{seed}"], records[f"influence_seed{seed}/npz"]
  dataset = records[f"data_seed{seed}"]
  ids, total = influence["train/example_id"], influence["train/total_influence"]
  report.heading("Influence of the training examples on the validation set")
  report.paragraph(
      f"Scoring run seed {seed}: final validation loss "
      f"{subruns.final_metric(scored, 'test_loss'):.4f}, accuracy "
      f"{subruns.final_metric(scored, 'test_accuracy'):.4f}; {int((total < 0).sum())} of "
      f"{len(total)} training examples have a negative total influence (harmful); total "
      f"influence ranges {total.min():.2f} to {total.max():.2f} (sum over "
      f"{len(influence['test/example_id'])} targets).")
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
