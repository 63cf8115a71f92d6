"""Study B3: is the kept low-margin ("high capacity") subset the same across seeds?

Reads the kept ids (reduction/kept_ids_epoch_XXXX.npy) of the reduced runs of the reduction
study (`margin_reduction`: same run names and configs, so with `runs_from` set to that study's
workdir nothing is trained; with `runs_from=''` the runs are trained under this workdir).
Seeds change the initialization and the data order, not the training subset (`subset_seed` is
fixed), so every run of a dataset chooses from the same examples.

  selection       first: the kept set chosen when the training split was first separated;
                  last: the one chosen at the last evaluation (re-selected every
                  `base.reduction.every` epochs in between)
  Jaccard         |A ∩ B| / |A ∪ B| of two runs' kept ids; per class c, of the kept ids whose
                  label is c (NaN when neither run kept one); averaged over all pairs of seeds
  all             the Jaccard of the whole kept sets, averaged over pairs of seeds
  random_expected what two independent uniform subsets of the same sizes would give:
                  E|A ∩ B| = |A| |B| / N, J ≈ E|A ∩ B| / (|A| + |B| - E|A ∩ B|), whole sets
  first_vs_last   the Jaccard of one run's first and last kept sets (how much the subset
                  changes during training), mean over seeds

Claim checked (Banburski et al. 2021): the kept subset differs from run to run (Jaccard well
below 1; for the margin runs, well above the random expectation would mean the margin picks a
partly run-independent set of examples).
"""

from __future__ import annotations

import itertools
import pathlib
from typing import Any, Sequence

import numpy as np

from regularity_jax.sweeps import figures
from regularity_jax.studies.margins_reduction import study as margin_reduction
from regularity_jax.sweeps.errors import StudyError
from regularity_jax.sweeps.report import Report

SELECTIONS = ("first", "last")


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
  """|a ∩ b| / |a ∪ b| of two id sets (int arrays, duplicates ignored); NaN if both empty."""
  a, b = np.unique(a), np.unique(b)
  union = len(np.union1d(a, b))
  return float(len(np.intersect1d(a, b)) / union) if union else float("nan")


def jaccard_per_class(a: np.ndarray, b: np.ndarray, ids: np.ndarray, labels: np.ndarray,
                      num_classes: int) -> np.ndarray:
  """f64[num_classes]: the Jaccard of the ids of a and b whose label is c, for each class c.

  Args:
    a, b: int[Ka], int[Kb] kept example ids.
    ids, labels: int[N] the training split's ids and their labels (the id -> label map).
    num_classes: C.
  """
  label_of = dict(zip(np.asarray(ids).tolist(), np.asarray(labels).tolist()))
  missing = [i for i in np.concatenate([a, b]).tolist() if i not in label_of]
  if missing:
    raise StudyError(f"kept ids {missing[:5]} are not training examples of this dataset")
  la = np.array([label_of[i] for i in np.asarray(a).tolist()], np.int64)
  lb = np.array([label_of[i] for i in np.asarray(b).tolist()], np.int64)
  return np.array([jaccard(np.asarray(a)[la == c], np.asarray(b)[lb == c])
                   for c in range(num_classes)])


def mean_pairwise(sets: Sequence[np.ndarray], ids: np.ndarray, labels: np.ndarray,
                  num_classes: int) -> tuple[np.ndarray, float]:
  """Per-class Jaccard f64[C] and whole-set Jaccard, averaged over all pairs of `sets`."""
  pairs = list(itertools.combinations(range(len(sets)), 2))
  if not pairs:
    return np.full(num_classes, np.nan), float("nan")
  per_class = np.array([jaccard_per_class(sets[i], sets[j], ids, labels, num_classes)
                        for i, j in pairs])
  with np.errstate(all="ignore"):
    by_class = np.nanmean(per_class, axis=0) if np.isfinite(per_class).any() else \
        np.full(num_classes, np.nan)
  return by_class, float(np.mean([jaccard(sets[i], sets[j]) for i, j in pairs]))


def expected_random_jaccard(size_a: int, size_b: int, population: int) -> float:
  """Approximate Jaccard of two independent uniform subsets of sizes a and b of N elements:
  I / (a + b - I) with I = a b / N, the expected intersection."""
  if population <= 0:
    return float("nan")
  inter = size_a * size_b / population
  union = size_a + size_b - inter
  return float(inter / union) if union > 0 else float("nan")


TITLE = "Overlap of the kept low-margin subsets across seeds"


def check(config) -> None:
  margin_reduction._check(config)  # pylint: disable=protected-access
  if len(config.seeds) < 2:
    raise StudyError("overlap across seeds needs at least 2 seeds; set --config.seeds")
  if config.runs_from and not (pathlib.Path(config.runs_from) / "runs").is_dir():
    raise StudyError(f"runs_from={config.runs_from!r} has no runs/ folder; run the reduction "
                     "study into it first, or set --config.runs_from='' to train here")


def runs_root(config, workdir) -> pathlib.Path:
  """Where the reduced runs live: the reduction study's workdir, or this one."""
  return pathlib.Path(config.runs_from) if config.runs_from else pathlib.Path(workdir)


def grid(config):
  """(dataset, fraction, method, [run names over seeds]) of every group compared."""
  for dataset in config.datasets:
    for fraction in config.fractions:
      for method in config.methods:
        yield dataset, float(fraction), method, [
            margin_reduction.run_name(dataset, method, float(fraction), int(seed))
            for seed in config.seeds]


def sweep(config, runs) -> dict[str, Any]:
  """Every reduced run, and its first and last kept ids (`kept:<name>`, None when the run
  never separated)."""
  records: dict[str, Any] = {}
  for dataset, fraction, method, names in grid(config):
    for seed, name in zip(config.seeds, names):
      result = records[name] = runs.run(name, margin_reduction.run_config(
          config, dataset, method, fraction, int(seed)))
      files = margin_reduction.kept_id_files(result.workdir)
      records[f"kept:{name}"] = ((np.load(files[0][1]), np.load(files[-1][1])) if files
                                 else None)
  return records


def measure(config, records) -> dict[str, Any]:
  """rows (Jaccard per class and overall, against the random expectation), the class
  composition of the last kept sets, the class shares of the split, and skipped runs."""
  rows: list[dict[str, Any]] = []
  composition, class_share, num_classes_of, skipped = {}, {}, {}, []
  for dataset, fraction, method, names in grid(config):
    kept = {s: [] for s in SELECTIONS}
    churn = []
    for name in names:
      if records[f"kept:{name}"] is None:
        skipped.append(name)
        continue
      first, last = records[f"kept:{name}"]
      kept["first"].append(first)
      kept["last"].append(last)
      churn.append(jaccard(first, last))
    scores = records[names[-1]].scores
    ids, labels = scores["train/example_id"], scores["train/label"]
    num_classes = num_classes_of[dataset] = int(labels.max()) + 1
    class_share[dataset] = np.bincount(labels, minlength=num_classes) / len(labels)
    for selection in SELECTIONS:
      sets = kept[selection]
      if len(sets) < 2:
        continue
      by_class, whole = mean_pairwise(sets, ids, labels, num_classes)
      pairs = list(itertools.combinations(sets, 2))
      expected = np.mean([expected_random_jaccard(len(a), len(b), len(ids)) for a, b in pairs])
      row = {"dataset": dataset, "method": method, "fraction": fraction,
             "selection": selection, "seeds": len(sets), "kept": int(len(sets[0])),
             "all": whole, "random_expected": float(expected)}
      row.update({f"class {c}": float(v) for c, v in enumerate(by_class)})
      row["first_vs_last"] = float(np.mean(churn)) if selection == "last" else float("nan")
      rows.append(row)
      if selection == "last":
        label_of = dict(zip(ids.tolist(), labels.tolist()))
        composition[(dataset, method, fraction)] = np.mean(
            [np.bincount([label_of[i] for i in s.tolist()], minlength=num_classes) / len(s)
             for s in sets], axis=0)
  return {"rows": rows, "composition": composition, "class_share": class_share,
          "num_classes": num_classes_of, "skipped": skipped}


def report(config, records, measured, report: Report, runs) -> None:
  rows = measured["rows"]
  report.note("source runs", f"{runs.root}: {runs.summary()}")
  report.note("setup", f"datasets {tuple(config.datasets)}, kept fractions "
                       f"{tuple(config.fractions)}, methods {tuple(config.methods)}")
  if measured["skipped"]:
    report.paragraph("Runs that never reached the separation threshold (no kept ids): "
                     + ", ".join(measured["skipped"]) + ".")
  report.heading("Jaccard overlap of the kept ids, mean over pairs of seeds")
  class_cols = sorted({k for r in rows for k in r if k.startswith("class ")},
                      key=lambda k: int(k.split()[1]))
  columns = ["dataset", "method", "fraction", "selection", "seeds", "kept", "all",
             "random_expected", "first_vs_last"] + class_cols
  report.table(rows, columns=columns,
               formats={"fraction": ".1%", **{k: ".3f" for k in columns[6:]}})
  report.paragraph(_verdict(rows))
  for dataset in config.datasets:
    mine = [r for r in rows if r["dataset"] == dataset and r["selection"] == "last"]
    if mine:
      _figures(config, report, dataset, mine, measured)


def _figures(config, report, dataset, mine, measured):
  fractions = sorted({r["fraction"] for r in mine})
  num_classes = measured["num_classes"][dataset]
  fig, axes = figures.subplots(len(fractions), width=3.6)
  x = np.arange(num_classes)
  for ax, fraction in zip(axes, fractions):
    for k, method in enumerate(config.methods):
      r = next((r for r in mine if r["method"] == method and r["fraction"] == fraction), None)
      if r is None:
        continue
      ax.bar(x + (k - 0.5) * 0.4, [r[f"class {c}"] for c in range(num_classes)], width=0.4,
             label=f"{method} (all {r['all']:.2f})", color=f"C{k}")
      if method == "margin":
        ax.axhline(r["random_expected"], color="k", ls="--", lw=0.8, label="random expected")
    ax.set(xlabel="class", ylabel="Jaccard across seeds", title=f"{dataset}, {fraction:.1%} kept",
           xticks=x, ylim=(0, 1))
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3, axis="y")
  report.figure(fig, f"jaccard_{dataset}.png",
                f"{dataset}: per-class Jaccard of the last kept sets, mean over seed pairs")
  fig, axes = figures.subplots(1, width=4.5)
  ax = axes[0]
  ax.plot(x, measured["class_share"][dataset], "k--", marker="x", label="training split")
  for fraction in fractions:
    counts = measured["composition"].get((dataset, "margin", fraction))
    if counts is not None:
      ax.plot(x, counts, marker="o", label=f"margin {fraction:.1%}")
  ax.set(xlabel="class", ylabel="share of the kept set", title=f"{dataset}: kept-set classes",
         xticks=x)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=6)
  report.figure(fig, f"kept_classes_{dataset}.png",
                f"{dataset}: class shares of the last low-margin kept sets (mean over seeds)")


def _verdict(rows: Sequence[dict[str, Any]]) -> str:
  lines = []
  for r in rows:
    if r["method"] != "margin" or r["selection"] != "last":
      continue
    ratio = r["all"] / r["random_expected"] if r["random_expected"] > 0 else float("nan")
    lines.append(f"{r['dataset']}, {r['fraction']:.1%} kept: Jaccard across seeds "
                 f"{r['all']:.3f} ({ratio:.1f}x the random expectation {r['random_expected']:.3f})")
  if not lines:
    return "No margin runs with kept ids."
  return ("Last kept sets of the margin runs: " + "; ".join(lines) + ". A Jaccard below 1 means "
          "the subset differs from seed to seed; how far above the random expectation it lies "
          "says how much of it the data (not the run) decides.")
