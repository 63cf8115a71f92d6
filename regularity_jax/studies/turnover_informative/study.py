"""turnover_informative: is a correct hard example more informative than an easy one? (Liu,
Lin, Jaggi 2021)

Per seed s:
  1. a scoring run with turn-over dropout (`base`, seed s) gives every training example its
     memorization (`score`, default the loss form L(i; 1 - m_i) - L(i; m_i) at the last
     evaluation);
  2. among the correctly labelled examples (label == original label; all of them unless `base`
     corrupts labels) the k most memorized ("hard"), the k least memorized ("easy") and k random
     ones are removed, for each k in `ks`;
  3. each reduced training set, and the full one (k = 0), is retrained from scratch with seed s
     (`base` with turn-over off unless `retrain_turnover`), and its final test accuracy is read.

Claim checked: removing the k most memorized examples costs more test accuracy than removing the
k least memorized ones (paired over seeds, for each k; "within seed noise" when the mean
difference is not larger than its std); random removal is the reference.
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

ORDERS = ("most", "least", "random")


def removal_ids(ids: np.ndarray, score: np.ndarray, candidates: np.ndarray, k: int, order: str,
                seed: int) -> np.ndarray:
  """The k example ids to remove: the highest `score` ("most"), the lowest ("least") or a
  seeded random choice ("random") among the `candidates` (bool mask over `ids`).

  NaN scores sort as the lowest; ties are broken by position, so the choice is deterministic.
  """
  ids, candidates = np.asarray(ids), np.asarray(candidates, bool)
  if k > candidates.sum():
    raise StudyError(f"k={k} is more than the {int(candidates.sum())} candidate examples; "
                     "lower --config.ks")
  pool = ids[candidates]
  s = np.nan_to_num(np.asarray(score, np.float64)[candidates], nan=-np.inf)
  if order == "most":
    return pool[np.argsort(-s, kind="stable")[:k]]
  if order == "least":
    return pool[np.argsort(s, kind="stable")[:k]]
  if order == "random":
    return np.random.default_rng(seed).choice(pool, size=k, replace=False)
  raise StudyError(f"unknown removal order {order!r}; choose from {ORDERS}")


def _acc(rows, k, order, seed) -> float:
  return next(r["test_acc"] for r in rows
              if r["k"] == k and r["removed"] == order and r["seed"] == int(seed))


TITLE = "Turn-over dropout: are correct hard examples more informative?"


def check(config) -> None:
  for order in config.orders:
    if order not in ORDERS:
      raise StudyError(f"unknown order {order!r} in --config.orders; choose from {ORDERS}")


def _score_config(config, seed):
  return subruns.derive_config(config.base, {
      "dataset": config.dataset, "data_dir": subruns.data_dir_for(config, config.dataset),
      "seed": seed, "corruption.seed": seed, "turnover.enabled": True})


def _removals(config, scored, seed):
  """(run name, k, order, removed ids) of the retraining runs of one seed."""
  ids = scored.scores["train/example_id"]
  score = scored.scores[f"train/{config.score}"]
  correct = scored.scores["train/label"] == scored.scores["train/original_label"]
  for k in config.ks:
    for order in config.orders:
      yield (f"{order}{k}_seed{seed}", int(k), order,
             removal_ids(ids, score, correct, int(k), order, seed=1000 * seed + int(k)))


def sweep(config, runs) -> dict[str, Any]:
  """Per seed: the scoring run (`score_seed<s>`), its data (`data_seed<s>`), the full
  retraining run (`full_seed<s>`) and one retraining run per (k, order)."""
  records: dict[str, Any] = {}
  for seed in (int(s) for s in config.seeds):
    score_config = _score_config(config, seed)
    scored = records[f"score_seed{seed}"] = runs.run(f"score_seed{seed}", score_config)
    dataset = records[f"data_seed{seed}"] = training_setup.load_data(score_config)
    ids = scored.scores["train/example_id"]
    if not np.array_equal(ids, dataset.train.ids):
      raise StudyError("scores.npz rows do not match the loaded dataset; was the data changed?")
    retrain = subruns.derive_config(score_config, {
        "turnover.enabled": bool(config.retrain_turnover), "turnover.influence_targets": "none",
        "weighting.scheme": "uniform"})
    records[f"full_seed{seed}"] = runs.run_on_subset(f"full_seed{seed}", retrain, dataset, ids)
    for name, _, _, removed in _removals(config, scored, seed):
      records[name] = runs.run_on_subset(name, retrain, dataset, np.setdiff1d(ids, removed))
  return records


def measure(config, records) -> dict[str, Any]:
  """rows: test accuracy of every retraining run and its paired change; verdicts per k."""
  rows: list[dict[str, Any]] = []
  for seed in (int(s) for s in config.seeds):
    scored = records[f"score_seed{seed}"]
    ids, score = scored.scores["train/example_id"], scored.scores[f"train/{config.score}"]
    full_acc = subruns.final_metric(records[f"full_seed{seed}"], "test_accuracy")
    rows.append({"k": 0, "removed": "none", "seed": seed, "test_acc": full_acc, "delta": 0.0,
                 "mean_score_removed": float("nan")})
    for name, k, order, removed in _removals(config, scored, seed):
      acc = subruns.final_metric(records[name], "test_accuracy")
      rows.append({"k": k, "removed": order, "seed": seed, "test_acc": acc,
                   "delta": acc - full_acc,
                   "mean_score_removed": float(np.nanmean(score[np.isin(ids, removed)]))})
  return {"rows": rows, "verdicts": _verdicts(config, rows)}


def _verdicts(config, rows) -> list[str]:
  verdicts = []
  for k in config.ks:
    acc = {o: np.mean([r["test_acc"] for r in rows if r["k"] == k and r["removed"] == o])
           for o in config.orders}
    if "most" in acc and "least" in acc:
      diff = np.array([_acc(rows, k, "most", s) - _acc(rows, k, "least", s)
                       for s in config.seeds])
      spread = diff.std(ddof=1) if len(diff) > 1 else 0.0
      verdict = ("within seed noise" if len(diff) > 1 and abs(diff.mean()) <= spread else
                 "held" if diff.mean() < 0 else "did not hold")
      ref = f", random {acc['random']:.4f}" if "random" in acc else ""
      verdicts.append(f"k={k}: test accuracy with the most memorized removed {acc['most']:.4f}, "
                      f"least memorized removed {acc['least']:.4f}{ref}; paired difference "
                      f"most - least {diff.mean():+.4f} ± {spread:.4f} (std over "
                      f"{len(diff)} seeds) -> claim {verdict}")
  return verdicts


def report(config, records, measured, report: Report, runs) -> None:
  rows = measured["rows"]
  b = config.base
  report.note("setup", (
      f"{config.dataset}: {b.train_subset or 'all'} training / {b.test_subset or 'all'} test "
      f"examples; model {b.model} {b.model_kwargs.to_dict()}; {b.optimizer} lr "
      f"{b.learning_rate} momentum {b.momentum}, batch {b.batch_size}, {b.num_epochs} epochs; "
      f"scoring runs with turn-over dropout (rate {b.turnover.rate}); retraining "
      f"{'with' if config.retrain_turnover else 'without'} turn-over; k in {tuple(config.ks)}"))
  report.note("runs", runs.summary())
  summary = mean_std_rows(rows, ("k", "removed"), ("test_acc", "delta", "mean_score_removed"))
  report.heading("Test accuracy after removing k examples (mean ± std over seeds)")
  report.table(summary, headers={"delta": "test_acc - full (paired)",
                                 "mean_score_removed": f"mean {config.score} of removed"})
  report.heading("Every run")
  report.table(rows, formats={"test_acc": ".4f", "delta": "+.4f", "mean_score_removed": ".3f"})
  report.heading("Claim")
  report.bullets(measured["verdicts"])
  _accuracy_figure(config, report, rows)
  seed = int(config.seeds[0])
  scored, dataset = records[f"score_seed{seed}"], records[f"data_seed{seed}"]
  ids, score = scored.scores["train/example_id"], scored.scores[f"train/{config.score}"]
  correct = scored.scores["train/label"] == scored.scores["train/original_label"]
  for order in ("most", "least"):
    chosen = removal_ids(ids, score, correct, 16, order, seed=0)
    pos = np.array([np.flatnonzero(ids == c)[0] for c in chosen])
    fig = figures.image_grid(
        dataset.train.images[pos], [f"y={dataset.train.labels[p]} m={score[p]:.2f}" for p in pos],
        suptitle=f"16 {order} memorized training examples (seed {seed}, {config.score})")
    report.figure(fig, f"{order}_memorized.png", f"The 16 {order} memorized examples")


def _accuracy_figure(config, report, rows):
  fig, axes = figures.subplots(1, width=4.5, height=3.2)
  ax = axes[0]
  for order in config.orders:
    xs, means, stds = [0], [], []
    fulls = [r["test_acc"] for r in rows if r["k"] == 0]
    means.append(np.mean(fulls))
    stds.append(np.std(fulls))
    for k in config.ks:
      acc = [r["test_acc"] for r in rows if r["k"] == k and r["removed"] == order]
      xs.append(k)
      means.append(np.mean(acc))
      stds.append(np.std(acc))
    ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=f"{order} memorized removed"
                if order != "random" else "random removed")
  ax.set(xlabel="k examples removed", ylabel="test accuracy",
         title=f"{config.dataset}, {len(config.seeds)} seed(s)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  report.figure(fig, "test_accuracy_vs_k.png", "Test accuracy after removal (mean ± std)")
