"""turnover_weighting: difficulty-based loss weighting (idea D, Zhou, Wu et al. 2023) under three data
conditions.

Every scheme of `regularity_jax.weighting` (`schemes`; weights over difficulty ranks, mean 1,
recomputed each epoch from this run's running state from `base.weighting.start_epoch` on) is
trained with the difficulty `base.weighting.score` (default `generalization_error`: the
turn-over flipped-network loss L(i; 1 - m_i), so `base` has turn-over on) on

  clean      the training subset as it is
  noisy      `noise_fraction` of the training labels corrupted (`noise_kind`, default symmetric)
  long_tail  a long-tailed subsample of the clean subset: class c (index order) keeps a share
             `imbalance_ratio ** (-c / (C - 1))` of its examples (`datasets.long_tail_ids`);
             the test split stays balanced

Measured per run: final test accuracy; balanced test accuracy (mean of per-class accuracies,
from the sign of each test example's last logit margin); for long_tail the mean accuracy of the
smaller half of the classes ("tail"); for noisy the share of the total final weight that falls
on mislabeled examples (their share of examples is `noise_fraction`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from regularity_jax import weighting
from regularity_jax.sweeps import datasets
from regularity_jax.sweeps import figures
from regularity_jax.sweeps import subruns
from regularity_jax.sweeps.errors import StudyError
from regularity_jax.sweeps.report import Report
from regularity_jax.sweeps.report import mean_std_rows
from regularity_jax.training import RunResult
from regularity_jax.training import setup as training_setup

CONDITIONS = ("clean", "noisy", "long_tail")


def per_class_accuracy(scores, num_classes: int | None = None) -> np.ndarray:
  """f32[C]: test accuracy of each class (correct = last logit margin > 0; NaN: no example)."""
  labels = np.asarray(scores["test/label"])
  correct = np.asarray(scores["test/last_margin"]) > 0
  num_classes = num_classes or int(labels.max()) + 1
  return np.array([correct[labels == c].mean() if (labels == c).any() else np.nan
                   for c in range(num_classes)], np.float32)


def run_row(result: RunResult, condition: str, scheme: str, seed: int,
            tail_classes: np.ndarray | None) -> dict[str, Any]:
  s = result.scores
  acc = per_class_accuracy(s)
  row = {"condition": condition, "scheme": scheme, "seed": seed,
         "test_acc": subruns.final_metric(result, "test_accuracy"),
         "balanced_acc": float(np.nanmean(acc)),
         "tail_acc": float("nan"), "weight_share_mislabeled": float("nan")}
  if tail_classes is not None:
    row["tail_acc"] = float(np.nanmean(acc[tail_classes[tail_classes < len(acc)]]))
  wrong = s["train/label"] != s["train/original_label"]
  if wrong.any():
    w = np.asarray(s["train/weight"], np.float64)
    row["weight_share_mislabeled"] = float(w[wrong].sum() / w.sum())
  return row


TITLE = "Difficulty-based weighting: clean, noisy and long-tailed data"


def check(config) -> None:
  for c in config.conditions:
    if c not in CONDITIONS:
      raise StudyError(f"unknown condition {c!r} in --config.conditions; choose from {CONDITIONS}")
  for s in config.schemes:
    if s not in weighting.SCHEMES:
      raise StudyError(f"unknown scheme {s!r} in --config.schemes; choose from "
                       f"{weighting.SCHEMES}")


def _clean(config):
  return subruns.derive_config(config.base, {
      "dataset": config.dataset, "data_dir": subruns.data_dir_for(config, config.dataset)})


def long_tail(config) -> dict[str, Any] | None:
  """The long-tailed subsample: its data, kept ids, per-class counts and tail classes."""
  if "long_tail" not in config.conditions:
    return None
  dataset = training_setup.load_data(_clean(config))
  ids = datasets.long_tail_ids(dataset.train.labels, dataset.train.ids,
                               float(config.imbalance_ratio), seed=0)
  counts = np.bincount(dataset.train.labels[np.isin(dataset.train.ids, ids)],
                       minlength=dataset.num_classes)
  present = np.flatnonzero(counts > 0)
  tail_classes = present[np.argsort(counts[present], kind="stable")[:len(present) // 2]]
  return {"dataset": dataset, "ids": ids, "counts": counts[present], "classes": tail_classes}


def grid(config):
  """(run name, condition, scheme, seed, training config) of every run."""
  clean = _clean(config)
  for seed in (int(s) for s in config.seeds):
    for condition in config.conditions:
      for scheme in config.schemes:
        overrides = {"seed": seed, "weighting.scheme": scheme}
        if condition == "noisy":
          overrides.update({"corruption.kind": config.noise_kind,
                            "corruption.fraction": float(config.noise_fraction),
                            "corruption.seed": seed})
        yield (f"{condition}_{scheme}_seed{seed}", condition, scheme, seed,
               subruns.derive_config(clean, overrides))


def sweep(config, runs) -> dict[str, Any]:
  records: dict[str, Any] = {"long_tail": long_tail(config)}
  tail = records["long_tail"]
  for name, condition, _, _, cfg in grid(config):
    if condition == "long_tail":
      records[name] = runs.run_on_subset(name, cfg, tail["dataset"], tail["ids"],
                                         data_name="long_tail")
    else:
      records[name] = runs.run(name, cfg)
  return records


def measure(config, records) -> dict[str, Any]:
  """rows (every run), curves (test accuracy per epoch of the first seed), reading."""
  tail = records["long_tail"]
  rows, curves = [], {}
  for name, condition, scheme, seed, _ in grid(config):
    result = records[name]
    rows.append(run_row(result, condition, scheme, seed,
                        tail["classes"] if condition == "long_tail" else None))
    if seed == int(config.seeds[0]):
      curves.setdefault(condition, {})[scheme] = [
          (r["epoch"], r["test_accuracy"]) for r in result.metrics if "test_accuracy" in r]
  return {"rows": rows, "curves": curves, "reading": _reading(config, rows, result)}


def _reading(config, rows, result) -> list[str]:
  lines = []
  for condition in config.conditions:
    means = {s: np.mean([r["test_acc"] for r in rows
                         if r["condition"] == condition and r["scheme"] == s])
             for s in config.schemes}
    best = max(means, key=means.get)
    line = f"{condition}: best mean test accuracy {best} ({means[best]:.4f})"
    if "uniform" in means:
      line += f"; uniform {means['uniform']:.4f}"
    if "easy_first" in means and "hard_first" in means:
      line += (f"; easy_first {means['easy_first']:.4f} vs hard_first "
               f"{means['hard_first']:.4f}")
    lines.append(line)
  n_test = len(result.scores["test/label"])
  acc = float(np.mean([r["test_acc"] for r in rows]))
  lines.append(f"For scale: the binomial standard error of one accuracy on {n_test} test examples "
               f"is about {np.sqrt(acc * (1 - acc) / n_test):.4f}; with {len(config.seeds)} "
               "seed(s), differences of that size are not evidence for a scheme.")
  return lines


def report(config, records, measured, report: Report, runs) -> None:
  rows, curves, tail = measured["rows"], measured["curves"], records["long_tail"]
  if tail is not None:
    report.note("long-tail class counts", ", ".join(str(int(c)) for c in tail["counts"]) +
                f" (tail = classes {', '.join(str(int(c)) for c in sorted(tail['classes']))})")
  b = config.base
  report.note("setup", (
      f"{config.dataset}: {b.train_subset or 'all'} training / {b.test_subset or 'all'} test "
      f"examples; model {b.model} {b.model_kwargs.to_dict()}; {b.optimizer} lr "
      f"{b.learning_rate} momentum {b.momentum}, batch {b.batch_size}, {b.num_epochs} epochs; "
      f"turn-over {'on' if b.turnover.enabled else 'off'} (rate {b.turnover.rate}); difficulty "
      f"{b.weighting.score}, temperature {b.weighting.temperature}, weights from epoch "
      f"{b.weighting.start_epoch}; noisy = {config.noise_fraction:.0%} {config.noise_kind}; "
      f"long tail imbalance ratio {config.imbalance_ratio}"))
  report.note("runs", runs.summary())
  values = ("test_acc", "balanced_acc", "tail_acc", "weight_share_mislabeled")
  report.heading("Results (mean ± std over seeds)")
  report.table(mean_std_rows(rows, ("condition", "scheme"), values))
  report.heading("Every run")
  report.table(rows, formats={v: ".4f" for v in values})
  report.heading("Reading")
  report.bullets(measured["reading"])
  fig, axes = figures.subplots(len(config.conditions))
  for ax, condition in zip(axes, config.conditions):
    ys = {s: [p[1] for p in pts] for s, pts in curves.get(condition, {}).items()}
    x = [p[0] for p in next(iter(curves[condition].values()))] if condition in curves else []
    figures.curves(ax, x, ys, xlabel="epoch", ylabel="test accuracy", title=condition)
  report.figure(fig, "test_accuracy_curves.png",
                f"Test accuracy per epoch (seed {int(config.seeds[0])})")
  _bars(config, report, rows)


def _bars(config, report, rows):
  fig, axes = figures.subplots(1, width=1.6 * len(config.conditions) + 2.5, height=3.2)
  ax = axes[0]
  width = 0.8 / len(config.schemes)
  for j, scheme in enumerate(config.schemes):
    means, stds = [], []
    for condition in config.conditions:
      acc = [r["test_acc"] for r in rows if r["condition"] == condition and r["scheme"] == scheme]
      means.append(np.mean(acc))
      stds.append(np.std(acc))
    ax.bar(np.arange(len(config.conditions)) + j * width, means, width, yerr=stds, capsize=2,
           label=scheme)
  ax.set_xticks(np.arange(len(config.conditions)) + 0.4 - width / 2)
  ax.set_xticklabels(config.conditions)
  lo = min(r["test_acc"] for r in rows)
  ax.set_ylim(max(0.0, lo - 0.05), 1.0)
  ax.set_ylabel("final test accuracy")
  ax.legend(fontsize=7, ncol=2)
  ax.grid(alpha=0.3, axis="y")
  report.figure(fig, "test_accuracy_by_scheme.png", "Final test accuracy by scheme and condition")
