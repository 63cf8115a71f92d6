"""Study B2: dynamic training-set reduction to the low-margin examples (Banburski et al. 2021).

For each dataset and seed, three kinds of run share one base config (and so one initialization
and data order until the reduction starts):

  full      reduction off: every epoch presents the whole training split
  margin    `reduction.by=margin`: once an evaluation finds the training split separated
            (eval-mode training accuracy >= `base.reduction.threshold`), train only on the
            `fraction` of training examples with the lowest logit margins, re-selected from the
            latest evaluation every `base.reduction.every` epochs (regularity_jax.training.loop)
  random    `reduction.by=random`: the same schedule and size, a uniformly random subset,
            redrawn at every re-selection (the control: is it the margin that matters?)

for every kept `fraction`. All runs have the same number of epochs, so a reduced run makes
fewer steps once reduced. Per run, from metrics.jsonl:

  test_acc        test accuracy at the last evaluation
  start_epoch     the epoch whose evaluation started the reduction (n/a: never separated)
  test_at_start   test accuracy at that evaluation (before any reduced epoch)
  train_acc       eval-mode training accuracy at the last evaluation
  presented       training examples presented over all epochs (the compute that scales)
  train_s         wall time of the training steps, summed over epochs (epoch 1 includes the
                  compilation, the same for every run)
  eval_s          wall time of the evaluations (full train and test splits every eval_every
                  epochs, which the re-selection needs), margins and re-selection
  wall_s          wall time of the whole run when it was trained (data loading and
                  compilation included; runs/wall_times.json)

Paired comparison: for each seed, drop = test_acc(full) - test_acc(reduced); mean over seeds and
a 95% t-interval; train_acc_drop the same for the final eval-mode training accuracy (a reduced
run that loses its separation shows here); full_gain_since_start = test_acc(full) -
test_at_start, what the full run still gained after the point where the reduced run started
(the two runs are identical up to there): what a reduced run that merely stood still would
lose. The claim ("more than 99% reduction without significant loss") is counted as holding at
a fraction when the mean drop of the margin runs is at most `tolerance` (absolute test
accuracy); the random control says whether the margin is what made it hold.
"""

from __future__ import annotations

import math
import pathlib
from typing import Any, Sequence

from flax import traverse_util
import jax
import numpy as np
from scipy import stats

from regularity_jax.sweeps import figures
from regularity_jax.sweeps import subruns
from regularity_jax.sweeps.errors import StudyError
from regularity_jax.sweeps.report import Report
from regularity_jax.sweeps.report import mean_std_rows
from regularity_jax.training import RunResult

METHODS = ("margin", "random")


def t975(df: int) -> float:
  """The 97.5% quantile of Student's t with `df` degrees of freedom (scipy.stats.t)."""
  return float(stats.t.ppf(0.975, df)) if df >= 1 else float("nan")


def fraction_label(fraction: float) -> str:
  """0.1 -> '10', 0.005 -> '0p5' (percent, for run names)."""
  return f"{100 * float(fraction):g}".replace(".", "p")


def run_name(dataset: str, method: str, fraction: float | None, seed: int) -> str:
  if method == "full":
    return f"{dataset}_full_seed{seed}"
  return f"{dataset}_{method}{fraction_label(fraction)}_seed{seed}"


def run_config(config, dataset: str, method: str, fraction: float | None, seed: int):
  """The training config of one run: `config.base`, the dataset's `dataset_overrides` and the
  method's reduction fields. The overlap study derives the same configs (and so reuses runs)."""
  overrides = {"dataset": dataset, "data_dir": subruns.data_dir_for(config, dataset),
               "seed": int(seed)}
  per_dataset = config.get("dataset_overrides", {}).get(dataset, None)
  if per_dataset is not None:
    overrides.update(traverse_util.flatten_dict(per_dataset.to_dict(), sep="."))
  if method == "full":
    overrides["reduction.enabled"] = False
  else:
    overrides.update({"reduction.enabled": True, "reduction.fraction": float(fraction),
                      "reduction.by": method})
  return subruns.derive_config(config.base, overrides)


def kept_id_files(run_dir: str | pathlib.Path) -> list[tuple[int, pathlib.Path]]:
  """[(epoch, path)] of a run's reduction/kept_ids_epoch_XXXX.npy files, by epoch."""
  files = sorted(pathlib.Path(run_dir, "reduction").glob("kept_ids_epoch_*.npy"))
  return [(int(p.stem.rsplit("_", 1)[1]), p) for p in files]


def run_row(result: RunResult) -> dict[str, Any]:
  """The per-run numbers of the module docstring."""
  records = result.metrics
  started = [r for r in records if r.get("reduction_reselected")]
  start = started[0] if started else None
  return {"test_acc": subruns.final_metric(result, "test_accuracy"),
          "train_acc": subruns.final_metric(result, "eval_train_accuracy"),
          "start_epoch": float(start["epoch"]) if start else float("nan"),
          "test_at_start": float(start["test_accuracy"]) if start else float("nan"),
          "fraction_used": subruns.final_metric(result, "train_fraction_used"),
          "presented": int(sum(r["examples_presented"] for r in records)),
          "train_s": float(sum(r["train_time_s"] for r in records)),
          "eval_s": float(sum(r.get("eval_time_s", 0.0) for r in records)),
          "margin_auc": subruns.final_metric(result, "margin_auc")}


def paired_rows(rows: Sequence[dict[str, Any]], tolerance: float) -> list[dict[str, Any]]:
  """Per (dataset, method, fraction): the paired drop in test accuracy against the full run of
  the same seed (mean, 95% t-interval), and the compute and time relative to full."""
  full = {(r["dataset"], r["seed"]): r for r in rows if r["method"] == "full"}
  groups: dict[tuple, list[dict[str, Any]]] = {}
  for r in rows:
    if r["method"] != "full" and (r["dataset"], r["seed"]) in full:
      groups.setdefault((r["dataset"], r["method"], r["fraction"]), []).append(r)
  out = []
  for (dataset, method, fraction), members in groups.items():
    refs = [full[(m["dataset"], m["seed"])] for m in members]
    drop = np.array([f["test_acc"] - m["test_acc"] for f, m in zip(refs, members)])
    n = len(drop)
    half = t975(n - 1) * drop.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
    out.append({
        "dataset": dataset, "method": method, "fraction": fraction, "n": n,
        "full_gain_since_start": float(np.mean([f["test_acc"] - m["test_at_start"]
                                                for f, m in zip(refs, members)])),
        "drop_mean": float(drop.mean()), "drop_ci_low": float(drop.mean() - half),
        "drop_ci_high": float(drop.mean() + half),
        "train_acc_drop": float(np.mean([f["train_acc"] - m["train_acc"]
                                         for f, m in zip(refs, members)])),
        "presented_vs_full": float(np.mean([m["presented"] / f["presented"]
                                            for f, m in zip(refs, members)])),
        "train_s_vs_full": float(np.mean([m["train_s"] / f["train_s"]
                                          for f, m in zip(refs, members)])),
        "total_s_vs_full": float(np.mean([(m["train_s"] + m["eval_s"]) /
                                          (f["train_s"] + f["eval_s"])
                                          for f, m in zip(refs, members)])),
        "wall_vs_full": float(np.mean([m.get("wall_s", np.nan) / f.get("wall_s", np.nan)
                                       for f, m in zip(refs, members)])),
        "never_started": int(sum(not np.isfinite(m["start_epoch"]) for m in members)),
        "within_tolerance": bool(drop.mean() <= tolerance)})
  return out


def _check(config) -> None:
  for f in config.fractions:
    if not 0.0 < float(f) < 1.0:
      raise StudyError(f"kept fraction {f} is outside (0, 1); fix --config.fractions")
  for m in config.methods:
    if m not in METHODS:
      raise StudyError(f"unknown method {m!r}; set --config.methods to a subset of {METHODS}")
  if not config.seeds:
    raise StudyError("no seeds; set --config.seeds, e.g. '(0, 1, 2)'")


TITLE = "Dynamic training-set reduction to the low-margin examples"


def check(config) -> None:
  _check(config)


def grid(config):
  """(run name, dataset, seed, method, kept fraction or None) of every run: per dataset and
  seed the full run, then each (fraction, method)."""
  for dataset in config.datasets:
    for seed in (int(s) for s in config.seeds):
      plan = [("full", None)] + [(m, float(f)) for f in config.fractions for m in config.methods]
      for method, fraction in plan:
        yield run_name(dataset, method, fraction, seed), dataset, seed, method, fraction


def sweep(config, runs) -> dict[str, Any]:
  """Every run, and its wall time when trained (`wall:<name>`)."""
  records: dict[str, Any] = {}
  for name, dataset, seed, method, fraction in grid(config):
    records[name] = runs.run(name, run_config(config, dataset, method, fraction, seed))
    records[f"wall:{name}"] = runs.wall_time(name)
  return records


def measure(config, records) -> dict[str, Any]:
  """rows (every run), paired (drop against the full run of the same seed, with a 95%
  t-interval) and curves (test accuracy per epoch of the first seed)."""
  rows: list[dict[str, Any]] = []
  curves: dict[str, dict[str, list]] = {}
  for name, dataset, seed, method, fraction in grid(config):
    result = records[name]
    rows.append({"dataset": dataset, "method": method,
                 "fraction": 1.0 if fraction is None else fraction, "seed": seed,
                 **run_row(result), "wall_s": records[f"wall:{name}"]})
    if seed == int(config.seeds[0]):
      label = "full" if method == "full" else f"{method} {fraction:.1%}"
      curves.setdefault(dataset, {})[label] = [
          (r["epoch"], r["test_accuracy"]) for r in result.metrics if "test_accuracy" in r]
  return {"rows": rows, "paired": paired_rows(rows, config.tolerance), "curves": curves}


def _setup(config, dataset) -> str:
  cfg = run_config(config, dataset, "full", None, int(config.seeds[0]))
  return (f"{dataset}: {cfg.train_subset or 'all'} training / {cfg.test_subset or 'all'} test "
          f"examples, {cfg.model} {cfg.model_kwargs.to_dict()}, {cfg.optimizer} lr "
          f"{cfg.learning_rate} ({cfg.schedule}"
          + (f", x{cfg.lr_gamma} at {tuple(cfg.lr_milestones)}"
             if cfg.schedule == "multistep" else "")
          + f"), momentum {cfg.momentum}, weight decay {cfg.weight_decay}, batch "
          f"{cfg.batch_size}, {cfg.num_epochs} epochs, separation threshold "
          f"{cfg.reduction.threshold}, re-selection every {cfg.reduction.every} epoch(s)")


def report(config, records, measured, report: Report, runs) -> None:
  rows, paired = measured["rows"], measured["paired"]
  report.note("setup", "; ".join(_setup(config, d) for d in config.datasets)
              + f"; kept fractions {tuple(config.fractions)}")
  report.note("runs", runs.summary())
  report.note("accelerator", f"JAX backend {jax.default_backend()}")
  if "cifar10" not in config.datasets:
    report.paragraph(
        "CIFAR-10 with ResNet-18 (`experiments/studies/margins_reduction/config.py:cifar10`) is "
        f"not part of this report: it needs a GPU, and this invocation ran on "
        f"{jax.default_backend()} only.")
  report.heading("Summary: mean ± std over seeds")
  report.table(mean_std_rows(rows, ("dataset", "method", "fraction"),
                             ("test_acc", "test_at_start", "start_epoch", "train_acc", "train_s",
                              "eval_s", "wall_s")),
               formats={"fraction": ".1%"})
  report.heading(f"Paired against the full run of the same seed (tolerance "
                 f"{config.tolerance:.2%} test accuracy)")
  pct = ("full_gain_since_start", "drop_mean", "drop_ci_low", "drop_ci_high", "train_acc_drop")
  report.table(paired, formats={**{k: "+.2%" for k in pct}, "fraction": ".1%",
                                "presented_vs_full": ".3f", "train_s_vs_full": ".2f",
                                "total_s_vs_full": ".2f", "wall_vs_full": ".2f"})
  report.paragraph(_verdict(paired, config.tolerance))
  report.heading("Every run")
  report.table(rows, formats={"fraction": ".1%", "test_acc": ".4f", "train_acc": ".4f",
                              "test_at_start": ".4f", "fraction_used": ".4f",
                              "start_epoch": ".0f", "train_s": ".1f", "eval_s": ".1f",
                              "wall_s": ".1f",
                              "margin_auc": ".4f"})
  for dataset in config.datasets:
    _dataset_figure(config, report, dataset, rows, measured["curves"])


def _dataset_figure(config, report, dataset, rows, curves):
  first_seed = int(config.seeds[0])
  fig, axes = figures.subplots(3, width=3.6)
  mine = [r for r in rows if r["dataset"] == dataset]
  full_acc = np.array([r["test_acc"] for r in mine if r["method"] == "full"])
  fractions = sorted(config.fractions)
  for k, method in enumerate(config.methods):
    accs = [[r["test_acc"] for r in mine if r["method"] == method and r["fraction"] == f]
            for f in fractions]
    axes[0].errorbar(fractions, [np.mean(a) for a in accs],
                     yerr=[np.std(a, ddof=1) if len(a) > 1 else 0 for a in accs],
                     marker="o", capsize=3, label=method, color=f"C{k}")
    times = [[r["train_s"] + r["eval_s"] for r in mine
              if r["method"] == method and r["fraction"] == f] for f in fractions]
    axes[2].plot(fractions, [np.mean(t) for t in times], marker="o", label=method,
                 color=f"C{k}")
  axes[0].axhline(full_acc.mean(), color="k", lw=1, label="full")
  if len(full_acc) > 1:
    axes[0].axhspan(full_acc.mean() - full_acc.std(ddof=1),
                    full_acc.mean() + full_acc.std(ddof=1), color="k", alpha=0.1)
  axes[2].axhline(np.mean([r["train_s"] + r["eval_s"] for r in mine if r["method"] == "full"]),
                  color="k", lw=1, label="full")
  axes[0].set(xscale="log", xlabel="kept fraction", ylabel="final test accuracy", title=dataset)
  axes[2].set(xscale="log", xlabel="kept fraction", ylabel="train + eval wall time (s)",
              title="wall time (mean over seeds)")
  for label, pts in curves.get(dataset, {}).items():
    if label == "full" or label.startswith("margin") or label == f"random {fractions[0]:.1%}":
      e, a = zip(*pts)
      axes[1].plot(e, a, lw=1, label=label, ls="--" if label.startswith("random") else "-")
  axes[1].set(xlabel="epoch", ylabel="test accuracy", title=f"seed {first_seed}")
  lo = np.nanmin([r["test_at_start"] for r in mine] + [full_acc.min()])
  if np.isfinite(lo):
    axes[1].set_ylim(lo - 0.02, None)
  for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
  report.figure(fig, f"reduction_{dataset}.png",
                f"{dataset}: final test accuracy (mean ± std over seeds) and wall time against "
                f"the kept fraction; test accuracy over epochs (seed {first_seed})")


def _verdict(paired: Sequence[dict[str, Any]], tolerance: float) -> str:
  lines = []
  for dataset in dict.fromkeys(p["dataset"] for p in paired):
    mine = {(p["method"], p["fraction"]): p for p in paired if p["dataset"] == dataset}
    margin = sorted((p for (m, _), p in mine.items() if m == "margin"),
                    key=lambda p: p["fraction"])
    ok = [p for p in margin if p["within_tolerance"] and not p["never_started"]]
    if ok:
      best = ok[0]
      text = (f"{dataset}: the smallest kept fraction whose mean drop stays within "
              f"{tolerance:.2%} is {best['fraction']:.1%} (a {1 - best['fraction']:.1%} "
              f"reduction; drop {best['drop_mean']:+.2%}, 95% CI [{best['drop_ci_low']:+.2%}, "
              f"{best['drop_ci_high']:+.2%}], {best['presented_vs_full']:.2f} of the full run's "
              f"presented examples, {best['total_s_vs_full']:.2f} of its wall time).")
      rand = mine.get(("random", best["fraction"]))
      if rand is not None:
        text += (f" The random subset of that size: drop {rand['drop_mean']:+.2%} "
                 f"({'also within' if rand['within_tolerance'] else 'outside'} tolerance).")
      text += (f" After the reduction started the full run itself gained only "
               f"{best['full_gain_since_start']:+.2%}.")
    else:
      text = f"{dataset}: no kept fraction stays within {tolerance:.2%} of the full run."
    over99 = [p for p in margin if p["fraction"] < 0.01]
    if over99:
      held = [p for p in over99 if p["within_tolerance"] and not p["never_started"]]
      kept = ", ".join(format(p["fraction"], ".1%") for p in over99)
      verdict = "holds" if len(held) == len(over99) else "does not hold"
      text += f" More than 99% reduction ({kept} kept): the claim {verdict} at this scale."
      lost = [p for p in over99 if p["train_acc_drop"] > 0.01]
      if lost:
        text += (" There the margin runs lost training accuracy ("
                 + ", ".join(f"{p['train_acc_drop']:+.2%} at {p['fraction']:.1%}" for p in lost)
                 + " below the full run, mean over seeds).")
    lines.append(text)
  return " ".join(lines)
