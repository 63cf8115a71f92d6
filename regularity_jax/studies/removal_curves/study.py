"""Toneva-style removal curves (idea A): test accuracy vs fraction of training data removed,
easiest first, for each difficulty score.

Per dataset and seed s:
  1. a full run (`base`, seed s) scores every training example; it is also the point
     "0% removed" of every curve;
  2. when a turn-over score (memorization, memorization_loss, generalization_error) is among
     the scores, a second full run with turn-over dropout (`turnover.enabled=True`) scores it;
  3. the study writes workdir/scores/<dataset>_seed<s>.npz, the full run's scores.npz (with
     its provenance) plus
       train/grand         GraNd at the full run's checkpoint of `grand_epoch` (0 = the last),
                           computed here (`final_model.grand`): the loop does not track it
       train/<turn-over score>  the turn-over run's columns of the last evaluation
     which `pruning.scores_path` reads;
  4. for each score and fraction f in `fractions_removed`, a run with seed s on the kept
     1 - f of the training set: `pruning.rule` (default "hardest": keep the hardest, i.e.
     remove the easiest first, as Toneva et al.), `pruning.score` as named below, ties broken
     at random by `pruning.seed` = s. Same number of epochs as the full run, so a pruned run
     takes fewer optimizer steps (Toneva et al. also keep the epoch budget).

Scores (the registry `regularity_jax.metrics.difficulty`, docs/definitions.md; higher =
harder, presentation stream):
  forgetting         forgetting events, never-learned examples ranked as the most forgotten
  cbtl               the fraction of wrong presentations (CBTL, Zhang et al. 2021)
  aum                minus the mean logit margin (Pleiss et al. 2020)
  el2n               mean EL2N over presentations (Paul et al. 2021)
  grand              GraNd (Paul et al. 2021; see 3.)
  memorization_loss  turn-over memorization, loss form L(i; 1 - m_i) - L(i; m_i) (Liu et al.
                     2021; see 3.)
  random             a uniformly random subset (pruning.score="random"): the baseline

Claim checked (Toneva et al. 2019): removing the least forgotten examples first keeps test
accuracy up to a large fraction removed (MNIST 80%, CIFAR-10 30% in the paper), and better
than removing at random. Criterion: the largest fraction removed at which a score's mean test
accuracy is within `tolerance` of the full run's, and the mean gap to random at each fraction.
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np
from scipy import stats

from regularity_jax.metrics import difficulty
from regularity_jax.runs import scores_file
from regularity_jax.selection import pruning
from regularity_jax.sweeps import figures
from regularity_jax.sweeps import final_model
from regularity_jax.sweeps import subruns
from regularity_jax.sweeps.errors import StudyError
from regularity_jax.sweeps.report import Report
from regularity_jax.sweeps.report import mean_std_rows
from regularity_jax.training import RunResult

TURNOVER_COLUMNS = tuple(s.name for s in difficulty.SCORES.values() if s.source == "turnover")


def scores_table(full: RunResult, *, grand: np.ndarray | None = None,
                 turnover: RunResult | None = None) -> dict[str, np.ndarray]:
  """The full run's scores plus train/grand and the turn-over run's columns (see the module
  docstring), every column in the row order of the full run's train/example_id."""
  table = dict(full.scores)
  ids = np.asarray(table["train/example_id"])
  if grand is not None:
    table["train/grand"] = np.asarray(grand, np.float32)
  if turnover is not None:
    other = np.asarray(turnover.scores["train/example_id"])
    if not np.array_equal(np.sort(other), np.sort(ids)):
      raise StudyError("the turn-over run trained on other examples than the full run; "
                       "both must use the same dataset, subset and corruption")
    position = {int(i): p for p, i in enumerate(other)}
    rows = [position[int(i)] for i in ids]
    for name in TURNOVER_COLUMNS:
      if f"train/{name}" in turnover.scores:
        table[f"train/{name}"] = np.asarray(turnover.scores[f"train/{name}"], np.float32)[rows]
  return table


def write_table(table: dict[str, np.ndarray], path: pathlib.Path,
                provenance: dict[str, Any]) -> pathlib.Path:
  """Writes `table` with `provenance` to `path` unless the same ids and scores are there."""
  if path.is_file():
    with np.load(path) as z:
      same = all(k in z.files and np.array_equal(z[k], v, equal_nan=v.dtype.kind == "f")
                 for k, v in table.items() if k.startswith("train/"))
    if same:
      return path
    raise StudyError(f"{path} already holds other scores; nothing was overwritten: use a new "
                     "study workdir (or remove that file yourself)")
  path.parent.mkdir(parents=True, exist_ok=True)
  scores_file.write(path, table, provenance)
  return path


def rank_correlations(table, names) -> list[dict[str, Any]]:
  """Spearman rank correlation between the difficulty scores (scipy.stats.spearmanr: ties by
  average rank; +inf scores rank last, NaN scores as the largest finite one)."""
  ranked = {}
  for name in names:
    s = pruning.score_from_table(table, name, seed=0).astype(np.float64)
    ranked[name] = np.where(np.isnan(s), np.nanmax(np.where(np.isinf(s), np.nan, s)), s)
  return [{"score": a, **{b: float(stats.spearmanr(ranked[a], ranked[b]).statistic)
                          for b in names}} for a in names]


def _check(config) -> None:
  for name in config.scores:
    if name not in pruning.SCORES:
      raise StudyError(f"unknown score {name!r} in --config.scores; choose from "
                       f"{tuple(pruning.SCORES)}")
  for f in config.fractions_removed:
    if not 0.0 < float(f) < 1.0:
      raise StudyError(f"fraction removed {f} must be in (0, 1); fix --config.fractions_removed")
  if config.rule not in pruning.RULES:
    raise StudyError(f"unknown rule {config.rule!r}; choose from {pruning.RULES}")
  if not config.seeds:
    raise StudyError("no seeds; set --config.seeds, e.g. '(0,)'")
  for name in config.scores:
    kernel = difficulty.SCORES[name].source if name != "random" else None
    if kernel in metrics_kernels() and kernel not in config.base.tracking.kernels:
      raise StudyError(f"score {name!r} needs the {kernel!r} kernel: add it to "
                       "--config.base.tracking.kernels")


def metrics_kernels() -> tuple[str, ...]:
  from regularity_jax import metrics  # pylint: disable=g-import-not-at-top
  return tuple(metrics.KERNELS)


TITLE = "Removal curves: test accuracy vs fraction removed, easiest first"


def check(config) -> None:
  _check(config)


def _full_config(config, dataset, seed):
  return subruns.derive_config(config.base, {
      "dataset": dataset, "data_dir": subruns.data_dir_for(config, dataset), "seed": seed})


def _pruned_runs(config, dataset, seed, path):
  """(run name, score, fraction removed, overrides) of the pruned runs of one full run."""
  for name in config.scores:
    for f in (float(f) for f in config.fractions_removed):
      yield (f"{dataset}_{name}_removed{round(100 * f)}_seed{seed}", name, f, {
          "pruning.fraction_kept": round(1.0 - f, 6), "pruning.score": name,
          "pruning.rule": config.rule if name != "random" else "random",
          "pruning.scores_path": str(path) if name != "random" else "", "pruning.seed": seed})


def _grand(config, cfg, full):
  model = final_model.load(cfg, full.workdir, epoch=int(config.grand_epoch) or None)
  if not np.array_equal(model.dataset.train.ids, full.scores["train/example_id"]):
    raise StudyError("scores.npz rows do not match the loaded dataset; was the data changed?")
  return final_model.grand(model, model.dataset.train.images, model.dataset.train.labels,
                           batch_size=config.grand_batch,
                           chunk_size=int(config.get("grand_chunk", 0)) or None)


def sweep(config, runs) -> dict[str, Any]:
  """Per dataset and seed: the full run, the turn-over run (when a turn-over score is asked
  for), the scores table pruning reads (`table:<dataset>_seed<s>`) and the pruned runs."""
  records: dict[str, Any] = {}
  names = tuple(config.scores)
  for dataset in config.datasets:
    for seed in (int(s) for s in config.seeds):
      cfg = _full_config(config, dataset, seed)
      full = records[f"{dataset}_full_seed{seed}"] = runs.run(f"{dataset}_full_seed{seed}", cfg)
      turnover = None
      if any(n in TURNOVER_COLUMNS for n in names):
        turnover = records[f"{dataset}_turnover_seed{seed}"] = runs.run(
            f"{dataset}_turnover_seed{seed}", subruns.derive_config(cfg, {"turnover.enabled": True}))
      grand = _grand(config, cfg, full) if "grand" in names else None
      table = records[f"table:{dataset}_seed{seed}"] = scores_table(full, grand=grand,
                                                                    turnover=turnover)
      path = write_table(table, runs.root.parent.resolve() / "scores" / f"{dataset}_seed{seed}.npz",
                         scores_file.load(full.workdir / "scores.npz").provenance)
      for run_name, _, _, overrides in _pruned_runs(config, dataset, seed, path):
        records[run_name] = runs.run(run_name, subruns.derive_config(cfg, overrides))
  return records


def measure(config, records) -> dict[str, Any]:
  """rows (test accuracy at each fraction removed, per score and seed), full_rows, claims
  and the Spearman correlations between the scores (first seed)."""
  names = tuple(config.scores)
  rows, full_rows, correlations = [], [], {}
  for dataset in config.datasets:
    for seed in (int(s) for s in config.seeds):
      full = records[f"{dataset}_full_seed{seed}"]
      turnover = records.get(f"{dataset}_turnover_seed{seed}")
      if seed == int(config.seeds[0]):
        correlations[dataset] = rank_correlations(records[f"table:{dataset}_seed{seed}"],
                                                  [n for n in names if n != "random"])
      full_acc = subruns.final_metric(full, "test_accuracy")
      n_train = len(full.scores["train/example_id"])
      full_rows.append({
          "dataset": dataset, "seed": seed, "train": n_train, "test_acc": full_acc,
          "unforgettable": float(np.mean(full.scores["train/unforgettable"])),
          "never_learned": float(np.mean(full.scores["train/never_learned"])),
          "turnover_test_acc": (subruns.final_metric(turnover, "test_accuracy")
                                if turnover is not None else float("nan"))})
      pruned = list(_pruned_runs(config, dataset, seed, ""))
      for name in names:
        rows.append({"dataset": dataset, "score": name, "removed": 0.0, "seed": seed,
                     "kept": n_train, "test_acc": full_acc})
        for run_name, _, f, _ in (r for r in pruned if r[1] == name):
          result = records[run_name]
          rows.append({"dataset": dataset, "score": name, "removed": f, "seed": seed,
                       "kept": int(np.sum(result.scores["train/active"])),
                       "test_acc": subruns.final_metric(result, "test_accuracy")})
  claims = _claims(rows, config.datasets, names, float(config.tolerance))
  return {"rows": rows, "full_rows": full_rows, "claims": claims, "correlations": correlations,
          "summary": _summary(rows, names, config.fractions_removed)}


def report(config, records, measured, report: Report, runs) -> None:
  names, rows = tuple(config.scores), measured["rows"]
  b = config.base
  report.note("setup", (
      f"{', '.join(config.datasets)}: {b.train_subset or 'all'} training / "
      f"{b.test_subset or 'all'} test examples; model {b.model} {b.model_kwargs.to_dict()}; "
      f"{b.optimizer} lr {b.learning_rate} momentum {b.momentum}, batch {b.batch_size}, "
      f"{b.num_epochs} epochs (every run, pruned or not); rule {config.rule}; GraNd at "
      f"{'the last epoch' if not config.grand_epoch else f'epoch {config.grand_epoch}'}"))
  report.note("runs", runs.summary())
  for note in config.get("notes", ()):
    report.paragraph(note)
  report.heading("Full runs (the 0% point)")
  report.table(measured["full_rows"], formats={"test_acc": ".4f", "unforgettable": ".3f",
                                               "never_learned": ".4f", "turnover_test_acc": ".4f"})
  report.heading("Test accuracy after removing the easiest fraction (mean ± std over seeds)")
  for dataset in config.datasets:
    report.paragraph(f"**{dataset}**")
    report.table([r for r in measured["summary"] if r["dataset"] == dataset])
  report.heading("Claims")
  report.table(measured["claims"], formats={"removable": ".0%", "mean_gap_to_random": "+.4f",
                                            "gap_at_max": "+.4f"})
  report.paragraph(_verdict(measured["claims"], config.tolerance))
  if measured["correlations"]:
    report.heading(f"Spearman rank correlation between the scores (seed {config.seeds[0]})")
    for dataset, table in measured["correlations"].items():
      report.paragraph(f"**{dataset}**")
      report.table(table, formats={n: ".2f" for n in names})
  _figures(config, report, rows, names)


def _figures(config, report, rows, names):
  fig, axes = figures.subplots(len(config.datasets), width=4.2, height=3.3)
  for ax, dataset in zip(axes, config.datasets):
    for name in names:
      xs, means, stds = _curve(rows, dataset, name)
      ax.errorbar(xs, means, yerr=stds, marker=".", capsize=2,
                  label=name, ls="--" if name == "random" else "-")
    ax.set(xlabel="fraction of training set removed (easiest first)", ylabel="test accuracy",
           title=dataset)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  report.figure(fig, "removal_curves.png",
                f"Test accuracy vs fraction removed, mean ± std over seeds {tuple(config.seeds)}")
  if "random" not in names:
    return
  fig, axes = figures.subplots(len(config.datasets), width=4.2, height=3.3)
  for ax, dataset in zip(axes, config.datasets):
    _, base, _ = _curve(rows, dataset, "random")
    for name in names:
      if name == "random":
        continue
      xs, means, _ = _curve(rows, dataset, name)
      ax.plot(xs, means - base, marker=".", label=name)
    ax.axhline(0.0, color="gray", lw=0.8, ls="--")
    ax.set(xlabel="fraction removed", ylabel="test accuracy minus random removal",
           title=dataset)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  report.figure(fig, "gap_to_random.png", "Mean test accuracy of each score minus random removal")


def _curve(rows, dataset, name):
  xs = sorted({r["removed"] for r in rows if r["dataset"] == dataset and r["score"] == name})
  vals = [[r["test_acc"] for r in rows if r["dataset"] == dataset and r["score"] == name
           and r["removed"] == x] for x in xs]
  return (np.array(xs), np.array([np.mean(v) for v in vals]),
          np.array([np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in vals]))


def _summary(rows, names, fractions) -> list[dict[str, Any]]:
  """One row per (dataset, score): mean ± std test accuracy at each fraction removed."""
  cells = mean_std_rows(rows, ("dataset", "score", "removed"), ("test_acc",))
  out: dict[tuple, dict[str, Any]] = {}
  for c in cells:
    row = out.setdefault((c["dataset"], c["score"]), {"dataset": c["dataset"],
                                                      "score": c["score"]})
    row[f"{c['removed']:.0%} removed"] = c["test_acc"]
  return list(out.values())


def removable_fraction(removed: np.ndarray, accuracy: np.ndarray, tolerance: float) -> float:
  """The largest fraction removed up to which every point's accuracy stays within `tolerance`
  of the first point's (`removed` sorted ascending, removed[0] = 0 the full run)."""
  ok = np.asarray(accuracy) >= accuracy[0] - tolerance
  first_bad = int(np.argmin(ok)) if not ok.all() else len(ok)
  return float(removed[max(first_bad - 1, 0)])


def _claims(rows, datasets, names, tolerance) -> list[dict[str, Any]]:
  out = []
  for dataset in datasets:
    _, base, _ = _curve(rows, dataset, "random")
    for name in names:
      xs, means, _ = _curve(rows, dataset, name)
      gaps = means[1:] - base[1:] if len(base) == len(means) else np.full(len(means) - 1, np.nan)
      out.append({"dataset": dataset, "score": name,
                  "removable": removable_fraction(xs, means, tolerance),
                  "mean_gap_to_random": float(np.mean(gaps)) if len(gaps) else float("nan"),
                  "gap_at_max": float(gaps[-1]) if len(gaps) else float("nan"),
                  "beats_random_at": f"{int(np.sum(gaps > 0))}/{len(gaps)}"})
  return out


def _verdict(claims, tolerance) -> str:
  lines = []
  for dataset in dict.fromkeys(c["dataset"] for c in claims):
    cs = [c for c in claims if c["dataset"] == dataset and c["score"] != "random"]
    best = max(cs, key=lambda c: (c["removable"], c["mean_gap_to_random"]))
    forgetting = [c for c in cs if c["score"] == "forgetting"]
    text = (f"{dataset}: largest fraction removable within {tolerance:.1%} of the full run's "
            f"test accuracy: " + ", ".join(f"{c['score']} {c['removable']:.0%}" for c in claims
                                           if c["dataset"] == dataset)
            + f" (best: {best['score']}).")
    if forgetting:
      f = forgetting[0]
      text += (f" Forgetting vs random: mean gap {f['mean_gap_to_random']:+.4f}, above random "
               f"at {f['beats_random_at']} fractions.")
    lines.append(text)
  return " ".join(lines)
