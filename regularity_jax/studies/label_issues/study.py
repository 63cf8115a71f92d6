"""label_issues: cleanlab on turn-over probabilities (one run) vs on K-fold probabilities.

For each dataset, corruption kind, noise fraction and seed (all numbers from the runs'
scores.npz):

  mislabeled    label != original label (the changes a label-issue finder can find)
  issues        cleanlab's `filter.find_label_issues` (prune_by_noise_rate) on the
                out-of-sample probabilities: train/label_issue_turnover of the turn-over run,
                or `estimators.label_issues.find_label_issues` on the K fold runs' holdout/prob
  precision, recall, f1   of `issues` for `mislabeled`
  auroc         AUROC of 1 - label quality (cleanlab's self-confidence) for `mislabeled`
  flagged       the share of training examples flagged
  wall_s        wall time of the training runs the method needs (wall_time.json: the turn-over
                run, or the sum of the K fold runs), cleanlab's own time apart
  test_acc      final test accuracy (fold runs: mean over folds)
"""

from __future__ import annotations

import json
import time
from typing import Any, Mapping

import numpy as np

from regularity_jax.estimators import label_issues
from regularity_jax.estimators.detection import auroc
from regularity_jax.sweeps import figures
from regularity_jax.sweeps import subruns
from regularity_jax.sweeps.errors import StudyError
from regularity_jax.sweeps.report import Report
from regularity_jax.sweeps.report import mean_std_rows
from regularity_jax.training import RunResult

TITLE = "Label issues: cleanlab on turn-over vs K-fold probabilities"


def check(config) -> None:
  if int(config.folds) < 2:
    raise StudyError(f"folds={config.folds} must be >= 2; set --config.folds, e.g. 5")
  if not config.seeds:
    raise StudyError("no seeds; set --config.seeds, e.g. '(0,)'")
  for f in config.noise_fractions:
    if not 0.0 < float(f) < 1.0:
      raise StudyError(f"noise fraction {f} must be in (0, 1); fix --config.noise_fractions")


def conditions(config):
  for dataset in config.datasets:
    for kind in config.corruptions:
      for noise in config.noise_fractions:
        for seed in config.seeds:
          yield dataset, kind, float(noise), int(seed)


def _name(dataset, kind, noise, seed):
  return f"{dataset}_{kind}{round(100 * noise)}_seed{seed}"


def grid(config):
  """(run name, condition, overrides of `base`) of every run."""
  for dataset, kind, noise, seed in conditions(config):
    common = {"dataset": dataset, "data_dir": subruns.data_dir_for(config, dataset),
              "seed": seed, "corruption.seed": seed, "corruption.kind": kind,
              "corruption.fraction": noise}
    name = _name(dataset, kind, noise, seed)
    yield f"{name}_turnover", (dataset, kind, noise, seed), {
        **common, "turnover.enabled": True, "turnover.rate": float(config.turnover_rate),
        "turnover.label_issues": True}
    for k in range(int(config.folds)):
      yield f"{name}_fold{k}", (dataset, kind, noise, seed), {
          **common, "holdout.folds": int(config.folds), "holdout.fold": k,
          "holdout.seed": seed}


def sweep(config, runs) -> dict[str, RunResult]:
  return {name: runs.run(name, subruns.derive_config(config.base, overrides))
          for name, _, overrides in grid(config)}


def _wall(result: RunResult) -> float:
  path = result.workdir / "wall_time.json"
  return float(json.loads(path.read_text())["seconds"]) if path.is_file() else float("nan")


def quality(issues: np.ndarray, label_quality: np.ndarray,
            mislabeled: np.ndarray) -> dict[str, float]:
  """precision, recall, f1 of bool `issues` and AUROC of 1 - `label_quality` for `mislabeled`."""
  hits = int(np.sum(issues & mislabeled))
  precision = hits / max(int(issues.sum()), 1)
  recall = hits / max(int(mislabeled.sum()), 1)
  f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
  return {"precision": precision, "recall": recall, "f1": f1,
          "auroc": auroc(1.0 - np.asarray(label_quality, np.float64), mislabeled),
          "flagged": float(np.mean(issues))}


def measure(config, records: Mapping[str, RunResult]) -> dict[str, list[dict[str, Any]]]:
  rows = []
  for condition in conditions(config):
    name = _name(*condition)
    turnover = records[f"{name}_turnover"].scores
    ids = np.asarray(turnover["train/example_id"])
    mislabeled = np.asarray(turnover["train/label"]) != np.asarray(turnover["train/original_label"])
    base = dict(zip(("dataset", "corruption", "noise", "seed"), condition))
    rows.append({**base, "method": "turn-over (1 run)", **quality(
        np.asarray(turnover["train/label_issue_turnover"], bool),
        turnover["train/label_quality_turnover"], mislabeled),
                 "wall_s": _wall(records[f"{name}_turnover"]), "cleanlab_s": float("nan"),
                 "test_acc": subruns.final_metric(records[f"{name}_turnover"], "test_accuracy")})
    folds = [records[f"{name}_fold{k}"] for k in range(int(config.folds))]
    cv_ids, labels, probs = label_issues.cross_validated_probs([f.scores for f in folds])
    if not np.array_equal(np.sort(ids), cv_ids):
      raise StudyError(f"{name}: the fold runs do not cover the turn-over run's examples")
    t0 = time.perf_counter()
    issues, label_quality = label_issues.find_label_issues(labels, probs)
    cleanlab_s = time.perf_counter() - t0
    order = np.searchsorted(cv_ids, ids)  # turn-over's row order
    rows.append({**base, "method": f"{config.folds}-fold ({config.folds} runs)", **quality(
        issues[order], label_quality[order], mislabeled),
                 "wall_s": float(sum(_wall(f) for f in folds)), "cleanlab_s": cleanlab_s,
                 "test_acc": float(np.mean([subruns.final_metric(f, "test_accuracy")
                                            for f in folds]))})
  return {"rows": rows}


FORMATS = {"noise": ".0%", "precision": ".3f", "recall": ".3f", "f1": ".3f", "auroc": ".3f",
           "flagged": ".3f", "wall_s": ".0f", "cleanlab_s": ".2f", "test_acc": ".3f"}


def report(config, records, measured, report: Report, runs) -> None:
  rows = measured["rows"]
  b = config.base
  report.note("setup", (f"{', '.join(config.datasets)}: {b.train_subset or 'all'} training / "
                        f"{b.test_subset or 'all'} test examples; model {b.model} "
                        f"{b.model_kwargs.to_dict()}; {b.optimizer} lr {b.learning_rate} "
                        f"momentum {b.momentum}, batch {b.batch_size}, {b.num_epochs} epochs; "
                        f"turn-over rate {config.turnover_rate}; {config.folds} folds"))
  report.note("runs", runs.summary())
  report.heading("Label issues found, and what they cost")
  report.table(rows, formats=FORMATS)
  if len(config.seeds) > 1:
    report.paragraph("Mean ± std over seeds:")
    report.table(mean_std_rows(rows, ("dataset", "corruption", "noise", "method"),
                               ("precision", "recall", "f1", "auroc", "wall_s")))
  report.paragraph(_verdict(rows, int(config.folds)))
  fig, axes = figures.subplots(2)
  methods = sorted({r["method"] for r in rows})
  for ax, key in zip(axes, ("f1", "auroc")):
    xs = np.arange(len(rows) // len(methods))
    for j, m in enumerate(methods):
      ax.bar(xs + 0.4 * j, [r[key] for r in rows if r["method"] == m], width=0.4, label=m)
    ax.set_xticks(xs + 0.2)
    ax.set_xticklabels([_name(r["dataset"], r["corruption"], r["noise"], r["seed"])
                        for r in rows if r["method"] == methods[0]], fontsize=7)
    ax.set_ylabel(key)
    ax.legend(fontsize=7)
  report.figure(fig, "label_issues.png", "F1 of the flagged examples and AUROC of 1 - label "
                "quality for the changed labels, per condition")


def _verdict(rows, folds: int) -> str:
  turn = [r for r in rows if r["method"].startswith("turn-over")]
  cv = [r for r in rows if not r["method"].startswith("turn-over")]
  speed = np.nanmean([c["wall_s"] for c in cv]) / np.nanmean([t["wall_s"] for t in turn])
  return (f"Turn-over: F1 {np.mean([r['f1'] for r in turn]):.3f}, AUROC "
          f"{np.mean([r['auroc'] for r in turn]):.3f}; {folds}-fold: F1 "
          f"{np.mean([r['f1'] for r in cv]):.3f}, AUROC {np.mean([r['auroc'] for r in cv]):.3f} "
          f"(means over {len(turn)} conditions). The {folds} fold runs took {speed:.1f}x the "
          "wall time of the one turn-over run.")
