"""Test-set selection by regularity (idea A, Zhang et al. 2021): accuracy and calibration on the
most and the least regular test examples.

Per dataset and seed s, one run (`base` with `eval_every=1`) is trained on the training split;
every evaluation also scores the test split, so from its scores.npz (evaluation stream):
  cbgl              CBGL, test/cumulative_correct: correct evaluations of a test example
  malgeneralizing   mal-generalizing events, test/forgetting_events (never learned = +inf)
`regularity_jax.selection.test_sets.split_regular_irregular` takes the most regular and the
least regular `fraction` of the test split under each measure (ties at random, seed s).

The subsets are scored by the final model (last checkpoint, eval mode, `final_model.predict`)
of two runs:
  same          run s itself, whose evaluations produced the ranking (its last evaluation is
                one of them, so this accuracy is partly circular)
  independent   run s + 1 (the next seed in `seeds`, cyclically), whose model never
                contributed to the ranking; needs two seeds or more
Per subset: accuracy, expected calibration error (`test_sets.expected_calibration_error`,
`ece_bins` equal-width bins of the predicted class's softmax probability), mean confidence.

Claim checked (Zhang et al. 2021): regularity computed during training separates easy from hard
test examples: the least regular examples have a much lower accuracy, and a larger
calibration error, than the most regular ones, also for an independent model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from regularity_jax.metrics import difficulty
from regularity_jax.selection import test_sets
from regularity_jax.sweeps import figures
from regularity_jax.sweeps import final_model
from regularity_jax.sweeps import subruns
from regularity_jax.sweeps.errors import StudyError
from regularity_jax.sweeps.report import Report
from regularity_jax.sweeps.report import mean_std_rows


def softmax(logits: np.ndarray) -> np.ndarray:
  """f32[N, C] row softmax of f32[N, C] logits."""
  z = np.asarray(logits, np.float64)
  z = np.exp(z - z.max(axis=1, keepdims=True))
  return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def subset_metrics(probs: np.ndarray, labels: np.ndarray, rows: np.ndarray,
                   num_bins: int) -> dict[str, float]:
  """Accuracy, ECE and mean confidence of the predicted class on `rows` (positions)."""
  p = np.asarray(probs)[rows]
  correct = p.argmax(axis=1) == np.asarray(labels)[rows]
  conf = p.max(axis=1)
  return {"n": int(len(rows)), "accuracy": test_sets.accuracy(correct),
          "ece": test_sets.expected_calibration_error(conf, correct, num_bins),
          "confidence": float(conf.mean()) if len(rows) else float("nan")}


def reliability(probs: np.ndarray, labels: np.ndarray, num_bins: int):
  """(bin centres, accuracy per bin, count per bin) of the predicted-class confidence."""
  conf = probs.max(axis=1)
  correct = probs.argmax(axis=1) == labels
  bins = np.clip(np.ceil(conf * num_bins).astype(np.int64) - 1, 0, num_bins - 1)
  counts = np.bincount(bins, minlength=num_bins)
  acc = np.bincount(bins, correct, minlength=num_bins) / np.maximum(counts, 1)
  return (np.arange(num_bins) + 0.5) / num_bins, np.where(counts > 0, acc, np.nan), counts


def _check(config) -> None:
  for by in config.bys:
    if by not in test_sets.BY:
      raise StudyError(f"unknown regularity measure {by!r} in --config.bys; choose from "
                       f"{test_sets.BY}")
  for f in config.fractions:
    if not 0.0 < float(f) <= 0.5:
      raise StudyError(f"fraction {f} must be in (0, 0.5]; fix --config.fractions")
  if not config.seeds:
    raise StudyError("no seeds; set --config.seeds, e.g. '(0, 1)'")
  for by in config.bys:
    kernel = difficulty.SCORES[by].source
    if kernel not in config.base.tracking.kernels:
      raise StudyError(f"{by!r} needs the {kernel!r} kernel: add it to "
                       "--config.base.tracking.kernels")


TITLE = "Test-set selection by regularity: accuracy and calibration"


def check(config) -> None:
  _check(config)


def sweep(config, runs) -> dict[str, Any]:
  """Per dataset and seed: the run (`<dataset>_seed<s>`) and its final model's test-set
  probabilities (`probs:<dataset>_seed<s>`); per dataset the test split (`test:<dataset>`)."""
  records: dict[str, Any] = {}
  for dataset in config.datasets:
    for seed in (int(s) for s in config.seeds):
      cfg = subruns.derive_config(config.base, {
          "dataset": dataset, "data_dir": subruns.data_dir_for(config, dataset), "seed": seed,
          "eval_every": 1})
      result = records[f"{dataset}_seed{seed}"] = runs.run(f"{dataset}_seed{seed}", cfg)
      model = final_model.load(cfg, result.workdir)
      test = records[f"test:{dataset}"] = model.dataset.test
      if not np.array_equal(test.ids, result.scores["test/example_id"]):
        raise StudyError("scores.npz test rows do not match the loaded dataset; was the data "
                         "changed?")
      records[f"probs:{dataset}_seed{seed}"] = softmax(final_model.predict(
          model, test.images, batch_size=int(config.base.eval_batch_size)))
  return records


def measure(config, records) -> dict[str, Any]:
  """rows: accuracy, ECE and confidence of each subset under each model; claims; and the
  subsets of the first seed and fraction (for the figures)."""
  seeds = [int(s) for s in config.seeds]
  rows: list[dict[str, Any]] = []
  plots = {}
  for dataset in config.datasets:
    labels = records[f"test:{dataset}"].labels
    probs = {seed: records[f"probs:{dataset}_seed{seed}"] for seed in seeds}
    position = {int(i): p for p, i in enumerate(records[f"{dataset}_seed{seeds[0]}"]
                                                .scores["test/example_id"])}
    for k, seed in enumerate(seeds):
      table = records[f"{dataset}_seed{seed}"].scores
      evaluators = {"same": seed}
      if len(seeds) > 1:
        evaluators["independent"] = seeds[(k + 1) % len(seeds)]
      for by in config.bys:
        for fraction in config.fractions:
          regular, irregular = test_sets.split_regular_irregular(table, by, float(fraction),
                                                                 seed=seed)
          subsets = {"most regular": np.array([position[int(i)] for i in regular]),
                     "least regular": np.array([position[int(i)] for i in irregular]),
                     "all": np.arange(len(labels))}
          for model_name, other in evaluators.items():
            for subset, positions in subsets.items():
              rows.append({"dataset": dataset, "by": by, "fraction": float(fraction),
                           "model": model_name, "subset": subset, "seed": seed,
                           "model_seed": other,
                           **subset_metrics(probs[other], labels, positions,
                                            int(config.ece_bins))})
          if seed == seeds[0] and fraction == config.fractions[0]:
            plots[(dataset, by)] = (subsets, probs[evaluators.get("independent", seed)], table)
  return {"rows": rows, "claims": _claims(rows), "plots": plots}


def report(config, records, measured, report: Report, runs) -> None:
  rows, claims, seeds = measured["rows"], measured["claims"], [int(s) for s in config.seeds]
  b = config.base
  report.note("setup", (
      f"{', '.join(config.datasets)}: {b.train_subset or 'all'} training / "
      f"{b.test_subset or 'all'} test examples; model {b.model} {b.model_kwargs.to_dict()}; "
      f"{b.optimizer} lr {b.learning_rate} momentum {b.momentum}, batch {b.batch_size}, "
      f"{b.num_epochs} epochs, evaluation every epoch ({b.num_epochs} evaluations feed CBGL); "
      f"ECE with {config.ece_bins} bins"))
  report.note("runs", runs.summary())
  for note in config.get("notes", ()):
    report.paragraph(note)
  report.heading("Accuracy and calibration by subset (mean ± std over seeds)")
  summary = mean_std_rows(rows, ("dataset", "by", "fraction", "model", "subset"),
                          ("accuracy", "ece", "confidence"))
  for r in summary:
    r["fraction"] = f"{r['fraction']:.0%}"
  report.table(summary)
  report.heading("Claims")
  report.table(claims, formats={"fraction": ".0%", "acc_regular": ".4f", "acc_irregular": ".4f",
                                "ece_regular": ".4f", "ece_irregular": ".4f"})
  held = sum(c["holds"] for c in claims)
  report.paragraph(
      f"Least regular subset less accurate and worse calibrated than the most regular one in "
      f"{held} of {len(claims)} (dataset, measure, fraction, model) cells, means over seeds "
      f"{tuple(seeds)}.")
  report.heading("Every (seed, model) pair")
  report.table(rows, formats={"fraction": ".0%", "accuracy": ".4f", "ece": ".4f",
                              "confidence": ".4f"})
  for (dataset, by), (subsets, p, table) in measured["plots"].items():
    test = records[f"test:{dataset}"]
    _reliability_figure(config, report, dataset, by, subsets, p, test.labels, seeds[0])
    if by == config.bys[0]:
      score = test_sets.irregularity(table, by)
      pool = subsets["least regular"]
      least = pool[np.argsort(-score[pool], kind="stable")[:int(config.show_examples)]]
      titles = [f"y={test.labels[i]} p={p[i].argmax()} {_describe(by, score[i])}" for i in least]
      fig = figures.image_grid(test.images[least], titles,
                               suptitle=f"{dataset}: least regular test examples by {by}")
      report.figure(fig, f"least_regular_{dataset}.png",
                    f"{dataset}: the least regular test examples by {by} (seed {seeds[0]} "
                    "ranking; y: label, p: prediction of the model of the next seed)")


def _reliability_figure(config, report, dataset, by, subsets, p, y, first_seed):
  fig, axes = figures.subplots(len(subsets), width=3.0, height=2.9)
  for ax, (name, positions) in zip(axes, subsets.items()):
    centres, acc, _ = reliability(p[positions], y[positions], int(config.ece_bins))
    ax.bar(centres, np.nan_to_num(acc), width=1.0 / int(config.ece_bins), alpha=0.7,
           edgecolor="k", lw=0.4)
    ax.plot([0, 1], [0, 1], color="gray", ls="--", lw=0.8)
    m = subset_metrics(p, y, positions, int(config.ece_bins))
    ax.set(xlabel="confidence (predicted class)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1),
           title=f"{name}: acc {m['accuracy']:.3f}, ECE {m['ece']:.3f}")
    ax.title.set_fontsize(8)
  report.figure(fig, f"reliability_{dataset}_{by}.png",
                f"{dataset}, by {by}, {config.fractions[0]:.0%} subsets (seed {first_seed} "
                "ranking; model of the next seed when there is one)")


def _describe(by: str, irregularity: float) -> str:
  if by == "cbgl":
    return f"wrong {irregularity:.0%}"  # the fraction of evaluations that misclassified it
  return f"mal={irregularity:.0f}"


def _claims(rows) -> list[dict[str, Any]]:
  out = []
  keys = dict.fromkeys((r["dataset"], r["by"], r["fraction"], r["model"]) for r in rows)
  for dataset, by, fraction, model in keys:
    def mean(subset, key):
      return float(np.nanmean([r[key] for r in rows if (r["dataset"], r["by"], r["fraction"],
                                                         r["model"], r["subset"]) ==
                               (dataset, by, fraction, model, subset)]))
    c = {"dataset": dataset, "by": by, "fraction": fraction, "model": model,
         "acc_regular": mean("most regular", "accuracy"),
         "acc_irregular": mean("least regular", "accuracy"),
         "ece_regular": mean("most regular", "ece"),
         "ece_irregular": mean("least regular", "ece")}
    c["holds"] = bool(c["acc_irregular"] < c["acc_regular"] and
                      c["ece_irregular"] > c["ece_regular"])
    out.append(c)
  return out
