"""Study B1: the margin-distribution AUC as a generalization measure (Banburski et al. 2021).

One run per cell of a grid over label noise (`noise_fractions`, corruption `noise_kind`), width
(`widths`, written to the base field `width_field`, e.g. model_kwargs.hidden) and weight decay
(`weight_decays`), for each seed. From each run's last evaluation:

  margin_auc        area under the sorted normalized training-margin curve = mean normalized
                    margin over the training split, on the labels it was trained on (noisy ones
                    included); normalizer `base.margins.normalizer` (default: product of the
                    Frobenius norms of all kernels, BN folded; regularity_jax.models.norms)
  raw_margin_mean   the same mean of the UNnormalized logit margins (what normalization adds)
  log_network_norm  log of the normalizer
  train_acc         eval-mode accuracy on the training split (its possibly noisy labels)
  test_acc          accuracy on the clean test split
  gap               train_acc - test_acc, the generalization gap

Rank agreement: Kendall's tau-b (ties counted as in tau-b) between each measure and test_acc
and between each measure and gap, computed here in numpy (`kendall_tau_b`; the tests check it
against a hand count and against scipy.stats.kendalltau), with a two-sided permutation p-value
(`num_permutations` random relabelings of one variable, fixed seed). Claim checked: a larger
margin AUC goes with higher test accuracy (tau > 0) and a smaller gap (tau < 0), over all runs,
over the clean (noise 0) runs alone, where label noise cannot drive the ranking by itself, and
within each width (the Frobenius-product normalizer grows with the number and size of the
layers, so AUCs of different widths are on different scales).
"""

from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np

from regularity_jax.sweeps import figures
from regularity_jax.sweeps import subruns
from regularity_jax.sweeps.errors import StudyError
from regularity_jax.sweeps.report import Report
from regularity_jax.sweeps.report import mean_std_rows
from regularity_jax.sweeps.statistics import kendall_tau_b
from regularity_jax.sweeps.statistics import permutation_p_value
from regularity_jax.training import RunResult

MEASURES = ("margin_auc", "raw_margin_mean", "log_network_norm")
TARGETS = ("test_acc", "gap")


def run_row(result: RunResult) -> dict[str, Any]:
  """The measures and targets of one run (see the module docstring)."""
  s = result.scores
  train_acc = subruns.final_metric(result, "eval_train_accuracy")
  test_acc = subruns.final_metric(result, "test_accuracy")
  return {"train_acc": train_acc, "test_acc": test_acc, "gap": train_acc - test_acc,
          "margin_auc": subruns.final_metric(result, "margin_auc"),
          "raw_margin_mean": float(np.nanmean(s["train/eval_last_margin"])),
          "log_network_norm": subruns.final_metric(result, "log_network_norm"),
          "test_margin_auc": subruns.final_metric(result, "test_margin_auc"),
          "mislabeled": float(np.mean(s["train/label"] != s["train/original_label"]))}


def tau_rows(rows: Sequence[dict[str, Any]], subset: str, *, num_permutations: int,
             seed: int = 0) -> list[dict[str, Any]]:
  """One row per measure: tau-b (and permutation p) with test accuracy and with the gap."""
  out = []
  for measure in MEASURES:
    row = {"runs": subset, "n": len(rows), "measure": measure}
    for target in TARGETS:
      x = [r[measure] for r in rows]
      y = [r[target] for r in rows]
      row[f"tau_{target}"] = kendall_tau_b(x, y)
      row[f"p_{target}"] = permutation_p_value(x, y, num_permutations=num_permutations,
                                               seed=seed)
    out.append(row)
  return out


def _width_label(width) -> str:
  return "x".join(str(w) for w in width) if isinstance(width, (tuple, list)) else str(width)


def _check(config) -> None:
  for f in config.noise_fractions:
    if not 0.0 <= float(f) <= 1.0:
      raise StudyError(f"noise fraction {f} is outside [0, 1]; fix --config.noise_fractions")
  n = len(config.noise_fractions) * len(config.widths) * len(config.weight_decays) * \
      len(config.seeds)
  if n < 3:
    raise StudyError(f"the grid has {n} runs; Kendall's tau needs at least 3: add "
                     "noise_fractions, widths, weight_decays or seeds")


TITLE = "Margin-distribution AUC as a generalization measure"


def check(config) -> None:
  _check(config)


def grid(config):
  """(run name, noise, width, weight decay, seed, overrides of `base`) of every run."""
  dataset = config.dataset
  for noise, width, wd, seed in itertools.product(config.noise_fractions, config.widths,
                                                  config.weight_decays, config.seeds):
    overrides = {"dataset": dataset, "data_dir": subruns.data_dir_for(config, dataset),
                 "seed": int(seed), "corruption.seed": int(seed),
                 "corruption.kind": config.noise_kind if noise > 0 else "none",
                 "corruption.fraction": float(noise), config.width_field: width,
                 "weight_decay": float(wd)}
    name = (f"{dataset}_noise{round(100 * noise)}_w{_width_label(width)}_wd{wd:g}"
            f"_seed{seed}")
    yield name, float(noise), width, float(wd), int(seed), overrides


def sweep(config, runs) -> dict[str, RunResult]:
  return {name: runs.run(name, subruns.derive_config(config.base, overrides))
          for name, *_, overrides in grid(config)}


def measure(config, records) -> dict[str, Any]:
  """rows (measures and targets of every run) and taus (Kendall's tau-b with permutation
  p-values: over all runs, the clean ones, and each width)."""
  rows = [{"noise": noise, "width": _width_label(width), "weight_decay": wd, "seed": seed,
           **run_row(records[name])} for name, noise, width, wd, seed, _ in grid(config)]
  taus = tau_rows(rows, "all", num_permutations=config.num_permutations)
  clean = [r for r in rows if r["noise"] == 0]
  if len(clean) >= 3:
    taus += tau_rows(clean, "clean (noise 0)", num_permutations=config.num_permutations)
  widths = list(dict.fromkeys(r["width"] for r in rows))
  for width in widths if len(widths) > 1 else ():
    same = [r for r in rows if r["width"] == width]
    if len(same) >= 3:
      taus += tau_rows(same, f"width {width}", num_permutations=config.num_permutations)
  return {"rows": rows, "taus": taus}


def report(config, records, measured, report: Report, runs) -> None:
  rows, taus = measured["rows"], measured["taus"]
  b = config.base
  report.note("setup", (f"{config.dataset}: {b.train_subset or 'all'} training / "
                        f"{b.test_subset or 'all'} test examples; model {b.model} "
                        f"{b.model_kwargs.to_dict()} with {config.width_field} in "
                        f"{tuple(_width_label(w) for w in config.widths)}; {config.noise_kind} "
                        f"label noise {tuple(config.noise_fractions)}; weight decay "
                        f"{tuple(config.weight_decays)}; {b.optimizer} lr {b.learning_rate} "
                        f"momentum {b.momentum}, batch {b.batch_size}, {b.num_epochs} epochs; "
                        f"normalizer {b.margins.normalizer}"))
  report.note("runs", runs.summary())
  report.heading("Runs (last evaluation)")
  fmt = {k: ".4f" for k in ("train_acc", "test_acc", "gap", "margin_auc", "raw_margin_mean",
                            "test_margin_auc")}
  report.table(rows, formats={**fmt, "noise": ".0%", "mislabeled": ".1%",
                              "log_network_norm": ".3f", "weight_decay": "g"})
  if len(config.seeds) > 1:
    report.paragraph("Mean ± std over seeds:")
    report.table(mean_std_rows(rows, ("noise", "width", "weight_decay"),
                               ("test_acc", "gap", "margin_auc")))
  report.heading("Kendall's tau-b (scipy, permutation p-values)")
  report.table(taus, formats={"tau_test_acc": "+.3f", "tau_gap": "+.3f", "p_test_acc": ".3g",
                              "p_gap": ".3g"})
  report.paragraph(_verdict(taus))
  results = [records[name] for name, *_ in grid(config)]
  _scatter_figure(report, rows)
  _distribution_figure(config, report, rows, results)


def _style(rows):
  noises = sorted(set(r["noise"] for r in rows))
  widths = list(dict.fromkeys(r["width"] for r in rows))
  return noises, widths, "osD^v<>p*h", [f"C{k}" for k in range(len(noises))]


def _scatter_figure(report, rows):
  fig, axes = figures.subplots(2)
  noises, widths, markers, colors = _style(rows)
  for ax, target in zip(axes, TARGETS):
    for r in rows:
      filled = r["weight_decay"] > 0
      color = colors[noises.index(r["noise"])]
      ax.scatter(r["margin_auc"], r[target], marker=markers[widths.index(r["width"]) % 10],
                 facecolors=color if filled else "none", edgecolors=color, s=36)
    tau = kendall_tau_b([r["margin_auc"] for r in rows], [r[target] for r in rows])
    ax.set(xlabel="margin AUC (normalized, train)", ylabel=target, title=f"tau-b = {tau:+.2f}")
    ax.grid(alpha=0.3)
  for k, noise in enumerate(noises):
    axes[0].scatter([], [], color=colors[k], label=f"noise {noise:.0%}")
  for k, width in enumerate(widths):
    axes[0].scatter([], [], marker=markers[k % 10], facecolors="none", edgecolors="gray",
                    label=f"width {width}")
  axes[0].scatter([], [], facecolors="gray", edgecolors="gray", label="weight decay > 0 (filled)")
  axes[0].legend(fontsize=6)
  report.figure(fig, "auc_vs_generalization.png",
                "Final margin AUC against test accuracy and generalization gap, one point per "
                "run (color: label noise, marker: width, filled: weight decay)")


def _distribution_figure(config, report, rows, results):
  fig, axes = figures.subplots(2)
  noises, _, _, colors = _style(rows)
  first_seed = int(config.seeds[0])
  for row, result in zip(rows, results):
    if row["seed"] != first_seed:
      continue
    label = f"{row['noise']:.0%}/{row['width']}/{row['weight_decay']:g}"
    style = dict(color=colors[noises.index(row["noise"])], lw=0.9,
                 ls="-" if row["weight_decay"] > 0 else "--")
    q = np.asarray(result.final["train_margin_quantiles"])
    axes[0].plot((np.arange(len(q)) + 0.5) / len(q), q, label=label, **style)
    epochs = [m["epoch"] for m in result.metrics if "margin_auc" in m]
    axes[1].plot(epochs, [m["margin_auc"] for m in result.metrics if "margin_auc" in m], **style)
  axes[0].set(xlabel="fraction of training examples", ylabel="normalized margin",
              title="sorted training margins (end)")
  axes[1].set(xlabel="epoch", ylabel="margin AUC", title="margin AUC during training")
  for ax in axes:
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=5, title="noise/width/wd", title_fontsize=6)
  report.figure(fig, "margin_distributions.png",
                f"Training margin distributions at the end and the AUC over epochs (seed "
                f"{first_seed}; dashed: no weight decay)")


def _verdict(taus: Sequence[dict[str, Any]]) -> str:
  lines = []
  for row in taus:
    if row["measure"] != "margin_auc":
      continue
    t_acc, t_gap = row["tau_test_acc"], row["tau_gap"]
    lines.append(f"{row['runs']} runs (n={row['n']}): tau(margin AUC, test accuracy) = "
                 f"{t_acc:+.3f} (p = {row['p_test_acc']:.3g}; claimed > 0: "
                 f"{_agrees(t_acc, row['p_test_acc'], 1)}), tau(margin AUC, gap) = "
                 f"{t_gap:+.3f} (p = {row['p_gap']:.3g}; claimed < 0: "
                 f"{_agrees(t_gap, row['p_gap'], -1)}).")
  return " ".join(lines)


def _agrees(tau: float, p: float, sign: int, alpha: float = 0.05) -> str:
  if not np.isfinite(tau):
    return "undefined"
  if tau * sign > 0:
    return "agrees" if p < alpha else f"agrees in sign, not significant at {alpha}"
  return "contradicted" if p < alpha else f"not supported (p >= {alpha})"
