"""turnover_labels: real vs random labels, seen through turn-over dropout (Liu, Lin, Jaggi 2021).

For each dataset and fraction of random labels (`corruption.kind='random_labels'`: the label is
redrawn uniformly from all C classes, so about 1/C of the "randomized" examples keep their true
label) one turn-over run is trained, and from its scores.npz:

  mislabeled      label != original label (what a detector can possibly find; the loop's own
                  `memorization_auroc_corrupted` in metrics.jsonl uses the corruption flag)
  memorization    the turn-over self-influence at the last evaluation, loss form
                  L(i; 1 - m_i) - L(i; m_i) (`train/memorization_loss`), its 0/1 form
                  correct(i; m_i) - correct(i; 1 - m_i) (`train/memorization`) and the loss
                  form averaged over every evaluation (`train/memorization_loss_mean`)
  AUROC           of each memorization form for flagging the mislabeled examples
                  (`regularity_jax.estimators.detection.auroc`, ties count one half)
  fitting speed   learned_by_epoch(e) = fraction of a group whose first correct presentation
                  (`train/first_learned`, presentation stream: the train-mode forward pass of the
                  example's own sub-network m_i, before the update) happened in epochs 1..e.
                  Each example is presented once per epoch, so first_learned is an epoch index.
  groups          clean run (0% noise): "easy" = memorization at or below its `easy_quantile`
                  quantile, "hard" = at or above its `hard_quantile` quantile; runs with random
                  labels: "clean" (label unchanged) vs "mislabeled".

Claims checked (Liu et al.): easy and hard examples are fitted at the same time (criterion: when
the easy group reaches 90% learned, at least 20% of the hard group is learned too), easy ones
faster (criterion: the easy group reaches 50% learned no later than the hard group); memorization
flags randomized labels (AUROC well above 0.5).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from regularity_jax.sweeps import figures
from regularity_jax.sweeps.errors import StudyError
from regularity_jax.sweeps.report import Report
from regularity_jax.sweeps.report import mean_std_rows
from regularity_jax.sweeps import subruns
from regularity_jax.training import RunResult
from regularity_jax.estimators.detection import auroc

MEMORIZATION_KEYS = ("memorization_loss", "memorization", "memorization_loss_mean")


def mislabeled(scores: Mapping[str, np.ndarray]) -> np.ndarray:
  """bool[N]: training examples whose label differs from their original label."""
  return np.asarray(scores["train/label"]) != np.asarray(scores["train/original_label"])


def learned_by_epoch(first_learned: np.ndarray, num_epochs: int) -> np.ndarray:
  """f32[num_epochs]: entry e-1 = fraction of examples first learned in epochs 1..e
  (first_learned: i32[N] 0-based epoch of the first correct presentation, -1 = never)."""
  fl = np.asarray(first_learned)
  if len(fl) == 0:
    return np.full(num_epochs, np.nan, np.float32)
  counts = np.bincount(fl[fl >= 0], minlength=num_epochs)[:num_epochs]
  return (np.cumsum(counts) / len(fl)).astype(np.float32)


def epochs_to(curve: np.ndarray, fraction: float) -> float:
  """First (1-based) epoch at which `curve` reaches `fraction`; inf if never."""
  hit = np.flatnonzero(np.asarray(curve) >= fraction)
  return float(hit[0] + 1) if len(hit) else float("inf")


def difficulty_groups(scores: Mapping[str, np.ndarray], *, key: str = "memorization_loss",
                      easy_quantile: float = 0.5,
                      hard_quantile: float = 0.9) -> dict[str, np.ndarray]:
  """Boolean masks of the groups compared (see the module docstring)."""
  wrong = mislabeled(scores)
  if wrong.any():
    return {"clean": ~wrong, "mislabeled": wrong}
  m = np.asarray(scores[f"train/{key}"], np.float64)
  finite = np.isfinite(m)
  lo, hi = np.quantile(m[finite], easy_quantile), np.quantile(m[finite], hard_quantile)
  return {"easy": finite & (m <= lo), "hard": finite & (m >= hi)}


def memorization_aurocs(scores: Mapping[str, np.ndarray]) -> dict[str, float]:
  """AUROC of each memorization form for the mislabeled examples (NaN when one class is empty)."""
  wrong = mislabeled(scores)
  out = {}
  for key in MEMORIZATION_KEYS:
    ok = wrong.any() and not wrong.all()
    out[f"auroc_{key}"] = auroc(scores[f"train/{key}"], wrong) if ok else float("nan")
  return out


def fitting_rows(scores: Mapping[str, np.ndarray], num_epochs: int,
                 groups: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
  """Per group: size, learned after epoch 1, epochs to 50% / 90% learned, learned at the end."""
  rows = []
  for name, mask in groups.items():
    curve = learned_by_epoch(np.asarray(scores["train/first_learned"])[mask], num_epochs)
    rows.append({"group": name, "n": int(mask.sum()), "learned_epoch1": float(curve[0]),
                 "epochs_to_50": epochs_to(curve, 0.5), "epochs_to_90": epochs_to(curve, 0.9),
                 "learned_end": float(curve[-1])})
  return rows


def simultaneity(scores: Mapping[str, np.ndarray], num_epochs: int,
                 groups: Mapping[str, np.ndarray]) -> dict[str, float]:
  """The two fitting-speed criteria: the second group's learned fraction when the first group
  reaches 90%, and whether the first group reaches 50% no later than the second."""
  (a_name, a), (b_name, b) = list(groups.items())[:2]
  fl = np.asarray(scores["train/first_learned"])
  ca, cb = learned_by_epoch(fl[a], num_epochs), learned_by_epoch(fl[b], num_epochs)
  e90 = epochs_to(ca, 0.9)
  frac = float(cb[min(int(e90), num_epochs) - 1]) if np.isfinite(e90) else float(cb[-1])
  return {f"{b_name}_learned_when_{a_name}_90": frac,
          "same_time": frac >= 0.2,
          "first_faster": epochs_to(ca, 0.5) <= epochs_to(cb, 0.5)}


def run_row(result: RunResult, dataset: str, noise: float, seed: int) -> dict[str, Any]:
  s = result.scores
  wrong = mislabeled(s)
  mem = np.asarray(s["train/memorization_loss"], np.float64)
  row = {"dataset": dataset, "noise": noise, "seed": seed,
         "mislabeled": float(wrong.mean()),
         "test_acc": subruns.final_metric(result, "test_accuracy"),
         "train_acc_full_net": subruns.final_metric(result, "eval_train_accuracy"),
         "train_acc_own_subnet": subruns.final_metric(result, "train_accuracy"),
         "mem_clean": float(np.nanmean(mem[~wrong])) if (~wrong).any() else float("nan"),
         "mem_mislabeled": float(np.nanmean(mem[wrong])) if wrong.any() else float("nan")}
  row.update(memorization_aurocs(s))
  return row


TITLE = "Turn-over dropout: real vs random labels"


def check(config) -> None:
  for f in config.noise_fractions:
    if not 0.0 <= float(f) <= 1.0:
      raise StudyError(f"noise fraction {f} is outside [0, 1]; fix --config.noise_fractions")
  if not config.seeds:
    raise StudyError("no seeds; set --config.seeds, e.g. '(0,)'")


def grid(config):
  """(run name, dataset, noise, seed, overrides of `base`) of every run of the study."""
  for dataset in config.datasets:
    for noise in config.noise_fractions:
      for seed in config.seeds:
        overrides = {"dataset": dataset, "data_dir": subruns.data_dir_for(config, dataset),
                     "seed": int(seed), "corruption.seed": int(seed),
                     "corruption.kind": "random_labels" if noise > 0 else "none",
                     "corruption.fraction": float(noise)}
        yield f"{dataset}_noise{round(100 * noise)}_seed{seed}", dataset, noise, int(seed), overrides


def sweep(config, runs) -> dict[str, RunResult]:
  return {name: runs.run(name, subruns.derive_config(config.base, overrides))
          for name, *_, overrides in grid(config)}


def _groups(config, scores):
  return difficulty_groups(scores, key=config.memorization_key,
                           easy_quantile=config.easy_quantile, hard_quantile=config.hard_quantile)


def measure(config, records: Mapping[str, RunResult]) -> dict[str, list[dict[str, Any]]]:
  """rows (per run: memorization and its AUROC), fit_rows (fitting speed per group), claims."""
  epochs = int(config.base.num_epochs)
  rows, fit_rows, claims = [], [], []
  for name, dataset, noise, seed, _ in grid(config):
    result = records[name]
    rows.append(run_row(result, dataset, noise, seed))
    groups = _groups(config, result.scores)
    for r in fitting_rows(result.scores, epochs, groups):
      fit_rows.append({"dataset": dataset, "noise": noise, "seed": seed, **r})
    crit = simultaneity(result.scores, epochs, groups)
    claims.append({"dataset": dataset, "noise": noise, "seed": seed,
                   "groups": " vs ".join(groups),
                   "2nd learned when 1st at 90%": list(crit.values())[0],
                   "same time": crit["same_time"], "1st faster": crit["first_faster"]})
  return {"rows": rows, "fit_rows": fit_rows, "claims": claims}


def report(config, records, measured, report: Report, runs) -> None:
  rows, fit_rows, claims = measured["rows"], measured["fit_rows"], measured["claims"]
  epochs = int(config.base.num_epochs)
  b = config.base
  report.note("setup", (f"{', '.join(config.datasets)}: {b.train_subset or 'all'} training / "
                        f"{b.test_subset or 'all'} test examples; model {b.model} "
                        f"{b.model_kwargs.to_dict()}; turn-over rate {b.turnover.rate} at "
                        f"sites {tuple(b.turnover.sites)}; {b.optimizer} lr {b.learning_rate} "
                        f"momentum {b.momentum}, batch {b.batch_size}, {epochs} epochs; random "
                        f"labels {tuple(config.noise_fractions)}"))
  report.note("runs", runs.summary())
  report.heading("Memorization and its AUROC for the randomized labels")
  report.table(rows, formats={k: ".3f" for k in rows[0] if k not in ("dataset", "seed")} |
               {"noise": ".0%", "mislabeled": ".1%"})
  if len(config.seeds) > 1:
    report.paragraph("Mean ± std over seeds:")
    report.table(report_mean(rows))
  report.heading("Fitting speed (presentation stream)")
  report.table(fit_rows, formats={"noise": ".0%", "learned_epoch1": ".3f", "learned_end": ".3f",
                                  "epochs_to_50": ".0f", "epochs_to_90": ".0f"})
  report.heading("Claims")
  report.table(claims, formats={"noise": ".0%", "2nd learned when 1st at 90%": ".3f"})
  report.paragraph(_verdict(rows, claims))
  first_seed = int(config.seeds[0])
  plotted: dict[str, list[tuple[float, RunResult]]] = {}
  for name, dataset, noise, seed, _ in grid(config):
    if seed == first_seed:
      plotted.setdefault(dataset, []).append((noise, records[name]))
  for dataset, items in plotted.items():
    _fitting_figure(config, report, dataset, items, epochs, first_seed)
    _memorization_figure(config, report, dataset, items, first_seed)
  _auroc_figure(config, report, rows, first_seed)


def _fitting_figure(config, report, dataset, items, epochs, first_seed):
  fig, axes = figures.subplots(len(items))
  for ax, (noise, result) in zip(axes, items):
    groups = _groups(config, result.scores)
    fl = np.asarray(result.scores["train/first_learned"])
    figures.curves(ax, np.arange(1, epochs + 1),
                   {name: learned_by_epoch(fl[m], epochs) for name, m in groups.items()},
                   xlabel="epoch", ylabel="fraction first learned",
                   title=f"{dataset}, {noise:.0%} random labels")
    last = int(fl.max()) + 1  # the last epoch in which some example was first learned
    ax.set_xlim(0.5, min(epochs, last + 2) + 0.5)
    ax.set_ylim(0, 1.02)
  report.figure(fig, f"fitting_speed_{dataset}.png",
                f"{dataset}: fraction of each group first learned by each epoch (seed "
                f"{first_seed})")


def _memorization_figure(config, report, dataset, items, first_seed):
  fig, axes = figures.subplots(len(items))
  for ax, (noise, result) in zip(axes, items):
    wrong = mislabeled(result.scores)
    groups = {"clean": ~wrong, "mislabeled": wrong} if wrong.any() else {"all (clean)": ~wrong}
    figures.group_histogram(ax, result.scores[f"train/{config.memorization_key}"], groups,
                            xlabel=config.memorization_key)
    ax.set_title(f"{dataset}, {noise:.0%} random labels", fontsize=9)
  report.figure(fig, f"memorization_{dataset}.png",
                f"{dataset}: distribution of {config.memorization_key} (seed {first_seed})")


def _auroc_figure(config, report, rows, first_seed):
  fig, axes = figures.subplots(len(MEMORIZATION_KEYS))
  for ax, key in zip(axes, MEMORIZATION_KEYS):
    ys = {}
    for dataset in config.datasets:
      pts = [(r["noise"], r[f"auroc_{key}"]) for r in rows
             if r["dataset"] == dataset and r["seed"] == first_seed]
      ys[dataset] = [p[1] for p in pts]
      x = [p[0] for p in pts]
    figures.curves(ax, x, ys, xlabel="fraction of random labels", ylabel="AUROC",
                   title=key)
    ax.set_ylim(0.3, 1.02)
    ax.axhline(0.5, color="gray", lw=0.8, ls="--")
  report.figure(fig, "auroc.png", "AUROC of each memorization form for the mislabeled examples")


def report_mean(rows):
  values = [k for k in rows[0] if k not in ("dataset", "noise", "seed")]
  return mean_std_rows(rows, ("dataset", "noise"), values)


def _verdict(rows, claims) -> str:
  lines = []
  clean = [c for c in claims if c["groups"] == "easy vs hard"]
  if clean:
    same = sum(c["same time"] for c in clean)
    faster = sum(c["1st faster"] for c in clean)
    lines.append(f"Clean runs: easy and hard fitted at the same time in {same}/{len(clean)} "
                 f"runs, easy faster in {faster}/{len(clean)} runs.")
  noisy = [c for c in claims if c["groups"] == "clean vs mislabeled"]
  if noisy:
    same = sum(c["same time"] for c in noisy)
    faster = sum(c["1st faster"] for c in noisy)
    lines.append(f"Runs with random labels: clean and mislabeled fitted at the same time in "
                 f"{same}/{len(noisy)} runs, clean faster in {faster}/{len(noisy)} runs.")
  top = max(r["noise"] for r in rows)
  lines.append(
      f"Final train accuracy of the own sub-networks (presentation stream): at least "
      f"{min(r['train_acc_own_subnet'] for r in rows):.3f} in every run; at "
      f"{top:.0%} random labels the full network (eval mode) reached "
      + ", ".join(f"{r['train_acc_full_net']:.3f}" for r in rows if r["noise"] == top)
      + " on the same labels: each example's fixed mask lets its own sub-network fit its "
      "label quickly, so the fitting-speed curves above are those of the own sub-networks.")
  au = [r["auroc_memorization_loss"] for r in rows if np.isfinite(r["auroc_memorization_loss"])]
  if au:
    lines.append(f"AUROC of the loss-form memorization for the mislabeled examples: "
                 f"{min(au):.3f} to {max(au):.3f} over {len(au)} runs with some but not all "
                 "labels changed.")
  return " ".join(lines)
