"""Loss-based prioritization under noise (idea E, Hu et al. 2021): does it speed up clean
training and degrade with corrupted data?

For each condition (clean, and each `noise_kinds` x `noise_fractions`: `corruption.kind`
random_labels, shuffled_pixels or gaussian_images on that fraction of the training set, seeded
by the run's seed) and each `methods` entry (`prioritization`: uniform,
selective_backprop, importance, infobatch, noise_aware, rho_loss, and aum_filtered) one run is
trained with `eval_every=1`. noise_aware excludes the `prioritization_options.noise_fraction`
most forgotten examples; with `noise_aware_matches_corruption` that fraction is set to the
condition's corruption fraction (an oracle noise rate; the clean condition keeps `base`'s
value). rho_loss (RHO-LOSS) trains `rho_epochs` epochs (0 = base epochs x rho_candidates: the
backprop budget of uniform) on the same training set as every method (`base.holdout`: its
irreducible-loss model trains on the held-out part). aum_filtered is uniform training on the
examples that AUM's threshold samples do not flag: two threshold runs of the same length
(`aum_threshold.set=1`, then 2 with the first as partner; their cost is not in aum_filtered's
numbers, it is two uniform runs), then static pruning of every flagged example
(`pruning.score=aum_flag`, rule easiest).

Measured per run, from metrics.jsonl (one record per epoch):
  target            `target_accuracy` if > 0, else `target_relative` x the best test accuracy
                    of the uniform run of the same condition and seed; each entry of
                    `other_targets_relative` repeats the speed-up claim at that share
  to target         the first epoch whose test accuracy reaches the target, and the cumulative
                    optimizer steps (`step`), examples backpropagated
                    (`examples_backpropagated`), examples forwarded (`examples_forwarded`,
                    Selective-Backprop's scoring passes included) and training seconds
                    (`train_time_s`, evaluation excluded) at the end of that epoch; never = inf
                    (backprops also interpolated linearly in accuracy between the two
                    evaluations around the crossing: `backprops_to_target_interp`)
  speed-up          uniform's interpolated backprops to target / the method's (same condition
                    and seed); 0 when the method never reaches the target
  final, best acc   the last and the best test accuracy over the epochs
  noisy share       the share of all backpropagated presentations spent on corrupted
                    examples (`train/observations` of the presentation stream), against
                    their share of the data: how much a method prioritizes the noise (for
                    importance sampling, which draws with replacement, an example drawn twice
                    in one batch counts once, so its share is a lower bound)
Seconds include each jitted program's compilation (the first epoch, and Selective-Backprop's
second); `epoch_s` (the median training seconds of the epochs after the second) is the
steady-state cost.

Claim checked (Hu et al. 2021): on clean data the loss-based methods (selective_backprop,
importance, infobatch) reach the target with fewer backprops than uniform (speed-up > 1);
with noise their speed-up falls and their final accuracy drops relative to uniform.
Verdict per method: "faster" = mean clean speed-up > 1; "degrades" = mean speed-up over the
noisy conditions below the clean one, or final accuracy minus uniform lower with noise than
without. Only the loss-based methods count; noise_aware is the proposed remedy.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from regularity_jax.data import CORRUPTIONS
from regularity_jax.sweeps import figures
from regularity_jax.sweeps import subruns
from regularity_jax.sweeps.errors import StudyError
from regularity_jax.sweeps.report import Report
from regularity_jax.sweeps.report import mean_std_rows
from regularity_jax.training.features import prioritization

LOSS_BASED = ("selective_backprop", "importance", "infobatch")
AUM_FILTERED = "aum_filtered"  # uniform on the examples AUM's threshold samples do not flag
COST_KEYS = ("step", "examples_backpropagated", "examples_forwarded", "train_time_s")


def cumulative_costs(records: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
  """Per epoch record: epoch, test_accuracy (NaN if not evaluated) and the cumulative
  optimizer steps, examples backpropagated / forwarded and training seconds at its end.
  `step` is already cumulative in metrics.jsonl; the others are summed over epochs."""
  out, totals = [], {"examples_backpropagated": 0.0, "examples_forwarded": 0.0,
                     "train_time_s": 0.0}
  for r in records:
    for k in totals:
      totals[k] += float(r.get(k, 0.0))
    out.append({"epoch": int(r["epoch"]), "test_accuracy": float(r.get("test_accuracy", math.nan)),
                "step": float(r["step"]), **totals})
  return out


def time_to_target(records: Sequence[Mapping[str, Any]], target: float,
                   key: str = "test_accuracy") -> dict[str, float]:
  """The cost of reaching `target` on `key`: the first record with `key` >= target gives
  epoch, steps, backprops, forwards and seconds (cumulative at the end of that epoch, as in
  `cumulative_costs`); every value is inf when no record reaches it.

  `examples_backpropagated_interp` refines the backprops between evaluations: linear in the
  accuracy between the last evaluation below the target and the first at or above it (the
  end-of-epoch count when the first evaluation already reaches it), so that a method that
  backpropagates fewer examples per epoch is not favored by the coarser grid of the others.
  """
  previous = None
  for r, c in zip(records, cumulative_costs(records)):
    value = r.get(key)
    if value is None or not math.isfinite(float(value)):
      continue
    value = float(value)
    if value >= target:
      out = {"epoch": float(c["epoch"]), **{k: c[k] for k in COST_KEYS}}
      cost = c["examples_backpropagated"]
      if previous is not None and value > previous[0]:
        share = (target - previous[0]) / (value - previous[0])
        cost = previous[1] + share * (cost - previous[1])
      out["examples_backpropagated_interp"] = float(cost)
      return out
    previous = (value, c["examples_backpropagated"])
  return {"epoch": math.inf, "examples_backpropagated_interp": math.inf,
          **{k: math.inf for k in COST_KEYS}}


def best_metric(records: Sequence[Mapping[str, Any]], key: str = "test_accuracy") -> float:
  values = [float(r[key]) for r in records if key in r]
  return max(values) if values else math.nan


def steady_epoch_seconds(records: Sequence[Mapping[str, Any]]) -> float:
  """Median training seconds of the epochs after the second (compilation excluded)."""
  t = [float(r["train_time_s"]) for r in records[2:]]
  return float(np.median(t)) if t else math.nan


def noisy_share(scores: Mapping[str, np.ndarray]) -> tuple[float, float]:
  """(share of backpropagated presentations on corrupted examples, share of corrupted
  examples); NaN, NaN on clean data."""
  corrupted = np.asarray(scores["train/corrupted"], bool)
  if not corrupted.any():
    return math.nan, math.nan
  obs = np.asarray(scores["train/observations"], np.float64)
  return float(obs[corrupted].sum() / max(obs.sum(), 1.0)), float(corrupted.mean())


def conditions(config) -> list[tuple[str, str, float]]:
  """(name, corruption kind, fraction) of every condition, the clean one first."""
  out = [("clean", "none", 0.0)] if config.include_clean else []
  for kind in config.noise_kinds:
    for f in config.noise_fractions:
      out.append((f"{kind}_{round(100 * float(f))}", kind, float(f)))
  return out


def _check(config) -> None:
  for m in config.methods:
    if m not in prioritization.KINDS + (AUM_FILTERED,):
      raise StudyError(f"unknown method {m!r} in --config.methods; choose from "
                       f"{prioritization.KINDS + (AUM_FILTERED,)}")
  if "uniform" not in config.methods:
    raise StudyError("--config.methods must include 'uniform' (the reference of speed-ups)")
  for k in config.noise_kinds:
    if k not in CORRUPTIONS or k == "none":
      raise StudyError(f"unknown noise kind {k!r}; choose from {CORRUPTIONS[1:]}")
  for f in config.noise_fractions:
    if not 0.0 < float(f) <= 1.0:
      raise StudyError(f"noise fraction {f} must be in (0, 1]")
  if not config.seeds:
    raise StudyError("no seeds; set --config.seeds, e.g. '(0,)'")


TITLE = "Loss-based prioritization under noise"


def check(config) -> None:
  _check(config)


def _methods(config) -> list[str]:
  return ["uniform"] + [m for m in config.methods if m != "uniform"]


def grid(config):
  """(run name, seed, condition, method, overrides of `base`) of every run."""
  for seed in (int(s) for s in config.seeds):
    for cond, kind, fraction in conditions(config):
      for method in _methods(config):
        overrides = {"dataset": config.dataset,
                     "data_dir": subruns.data_dir_for(config, config.dataset),
                     "seed": seed, "eval_every": 1, "prioritization": method,
                     "corruption.kind": kind, "corruption.fraction": fraction,
                     "corruption.seed": seed}
        if method == "noise_aware" and config.noise_aware_matches_corruption and fraction > 0:
          overrides["prioritization_options.noise_fraction"] = fraction
        if method == "rho_loss":
          epochs = int(config.get("rho_epochs", 0)) or int(config.base.num_epochs) * int(
              config.base.prioritization_options.rho_candidates)
          overrides.update({"num_epochs": epochs, "checkpoint_every": epochs})
        if method == AUM_FILTERED:
          overrides["prioritization"] = "uniform"
        yield f"{cond}_{method}_seed{seed}", seed, cond, method, overrides


def sweep(config, runs) -> dict[str, Any]:
  out = {}
  for name, seed, cond, method, overrides in grid(config):
    if method == AUM_FILTERED:
      overrides = {**overrides, **aum_filter(config, runs, f"{cond}_aumset{{}}_seed{seed}",
                                             overrides)}
    out[name] = runs.run(name, subruns.derive_config(config.base, overrides))
  return out


def aum_filter(config, runs, name: str, overrides) -> dict[str, Any]:
  """Runs the two AUM threshold-sample runs of a condition (`name` formats the set index)
  and returns the pruning overrides that keep exactly the unflagged examples."""
  first = runs.run(name.format(1), subruns.derive_config(config.base, {
      **overrides, "aum_threshold.set": 1}))
  path = first.workdir / "scores.npz"
  second = runs.run(name.format(2), subruns.derive_config(config.base, {
      **overrides, "aum_threshold.set": 2, "aum_threshold.partner": str(path)}))
  flags = np.asarray(second.scores["train/aum_flag"])
  return {"pruning.scores_path": str(second.workdir / "scores.npz"), "pruning.score": "aum_flag",
          "pruning.rule": "easiest", "pruning.seed": int(overrides["seed"]),
          "pruning.fraction_kept": float(np.mean(flags == 0))}


def _row(config, result, target, reference, others, cond, method, seed) -> dict[str, Any]:
  hit = time_to_target(result.metrics, target)
  extra = {}
  for t, (level, ref) in others.items():
    other = time_to_target(result.metrics, level)
    extra[f"speedup@{t:g}"] = _ratio(ref["examples_backpropagated_interp"],
                                     other["examples_backpropagated_interp"])
  share, data_share = noisy_share(result.scores)
  records = result.metrics
  return {
      "condition": cond, "method": method, "seed": seed, "target": target,
      "epochs_to_target": hit["epoch"], "steps_to_target": hit["step"],
      "backprops_to_target": hit["examples_backpropagated"],
      "backprops_to_target_interp": hit["examples_backpropagated_interp"],
      "forwards_to_target": hit["examples_forwarded"],
      "seconds_to_target": hit["train_time_s"],
      "speedup": _ratio(reference["examples_backpropagated_interp"],
                        hit["examples_backpropagated_interp"]),
      "final_acc": subruns.final_metric(result, "test_accuracy"),
      "best_acc": best_metric(records),
      "backprops_total": float(sum(r["examples_backpropagated"] for r in records)),
      "forwards_total": float(sum(r["examples_forwarded"] for r in records)),
      "train_s_total": float(sum(r["train_time_s"] for r in records)),
      "epoch_s": steady_epoch_seconds(records),
      "noisy_share": share, "noisy_data_share": data_share, **extra}


def measure(config, records) -> dict[str, Any]:
  """rows (time to target, speed-up over uniform, final accuracy, noisy share: every run),
  curves (accuracy vs backprops of the first seed) and claims."""
  rows: list[dict[str, Any]] = []
  curves: dict[str, dict[str, tuple]] = {}
  by_condition: dict[tuple[int, str], dict[str, Any]] = {}
  for name, seed, cond, method, _ in grid(config):
    by_condition.setdefault((seed, cond), {})[method] = records[name]
  for (seed, cond), results in by_condition.items():
    best = best_metric(results["uniform"].metrics)
    target = (float(config.target_accuracy) if config.target_accuracy > 0 else
              float(config.target_relative) * best)
    reference = time_to_target(results["uniform"].metrics, target)
    others = {t: (float(t) * best, time_to_target(results["uniform"].metrics, float(t) * best))
              for t in config.get("other_targets_relative", ())}
    for method, result in results.items():
      rows.append(_row(config, result, target, reference, others, cond, method, seed))
      if seed == int(config.seeds[0]):
        costs = cumulative_costs(result.metrics)
        curves.setdefault(cond, {})[method] = (
            [c["examples_backpropagated"] for c in costs], [c["test_accuracy"] for c in costs])
  for row in rows:
    uni = next(r for r in rows if r["condition"] == row["condition"] and r["seed"] == row["seed"]
               and r["method"] == "uniform")
    row["final_minus_uniform"] = round(row["final_acc"] - uni["final_acc"], 6)
  names = [c[0] for c in conditions(config)]
  claims = {"": _claims(rows, _methods(config), names)}
  for t in config.get("other_targets_relative", ()):
    claims[f"{t:g}"] = _claims(rows, _methods(config), names, speedup_key=f"speedup@{t:g}")
  return {"rows": rows, "curves": curves, "claims": claims}


def report(config, records, measured, report: Report, runs) -> None:
  rows, curves = measured["rows"], measured["curves"]
  b = config.base
  report.note("setup", (
      f"{config.dataset}: {b.train_subset or 'all'} training / {b.test_subset or 'all'} test "
      f"examples; model {b.model} {b.model_kwargs.to_dict()}; {b.optimizer} lr "
      f"{b.learning_rate} momentum {b.momentum}, batch {b.batch_size}, {b.num_epochs} epochs, "
      f"evaluation every epoch; target "
      + (f"{config.target_accuracy:.3f}" if config.target_accuracy > 0 else
         f"{config.target_relative:.0%} of uniform's best test accuracy")
      + f"; prioritization options {b.prioritization_options.to_dict()}"))
  report.note("runs", runs.summary())
  for note in config.get("notes", ()):
    report.paragraph(note)
  values = ("speedup", "backprops_to_target_interp", "epochs_to_target", "final_acc",
            "final_minus_uniform", "noisy_share")
  report.heading("Summary (mean ± std over seeds; speed-up = uniform's interpolated backprops to "
                 "target / the method's)")
  report.table(_finite_mean_rows(rows, values))
  report.heading("Every run")
  report.table(rows, columns=list(_EVERY_RUN_FORMATS), formats=_EVERY_RUN_FORMATS)
  report.heading("Claims")
  formats = {"speedup_clean": ".2f", "speedup_noisy": ".2f", "final_delta_clean": "+.4f",
             "final_delta_noisy": "+.4f"}
  report.table(measured["claims"][""], formats=formats)
  report.paragraph(_verdict(measured["claims"][""]))
  for t in config.get("other_targets_relative", ()):
    report.paragraph(f"The same at a target of {t:.0%} of uniform's best test accuracy:")
    report.table(measured["claims"][f"{t:g}"], formats=formats)
    report.paragraph(_verdict(measured["claims"][f"{t:g}"]))
  names = [c[0] for c in conditions(config)]
  fig, axes = figures.subplots(len(names), width=3.4, height=2.9, ncols=min(4, len(names)))
  for ax, cond in zip(axes, names):
    for method, (x, y) in curves.get(cond, {}).items():
      ax.plot(x, y, marker=".", ms=3, label=method)
    ax.set(xlabel="examples backpropagated", ylabel="test accuracy", title=cond)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
  report.figure(fig, "accuracy_vs_backprops.png",
                f"Test accuracy vs cumulative examples backpropagated (seed {config.seeds[0]})")
  _speedup_figure(config, report, rows, names)


_EVERY_RUN_FORMATS = {
    "condition": None, "method": None, "seed": None, "target": ".3f", "epochs_to_target": ".0f",
    "steps_to_target": ".0f", "backprops_to_target": ".0f",
    "backprops_to_target_interp": ".0f", "forwards_to_target": ".0f",
    "seconds_to_target": ".2f", "speedup": ".2f", "final_acc": ".4f", "best_acc": ".4f",
    "final_minus_uniform": "+.4f", "backprops_total": ".0f", "forwards_total": ".0f",
    "train_s_total": ".2f", "epoch_s": ".3f", "noisy_share": ".3f", "noisy_data_share": ".2f"}


def _speedup_figure(config, report, rows, names):
  fig, axes = figures.subplots(2, width=max(4.0, 0.8 * len(names)), height=3.2)
  for method in _methods(config):
    speed = [np.nanmean([r["speedup"] for r in rows if r["condition"] == c and
                         r["method"] == method and np.isfinite(r["speedup"])] or [np.nan])
             for c in names]
    delta = [np.mean([r["final_minus_uniform"] for r in rows if r["condition"] == c and
                      r["method"] == method]) for c in names]
    axes[0].plot(range(len(names)), speed, marker="o", label=method)
    axes[1].plot(range(len(names)), delta, marker="o", label=method)
  for ax, label in zip(axes, ("speed-up in backprops to target", "final accuracy - uniform")):
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
  axes[0].axhline(1.0, color="gray", lw=0.8, ls="--")
  axes[1].axhline(0.0, color="gray", lw=0.8, ls="--")
  report.figure(fig, "speedup_by_condition.png",
                "Speed-up over uniform (backprops to target; missing = target never reached) "
                "and final accuracy minus uniform, mean over seeds")


def _ratio(a: float, b: float) -> float:
  if not math.isfinite(b):
    return 0.0 if math.isfinite(a) else math.nan
  if not math.isfinite(a):
    return math.inf
  return a / b if b > 0 else math.nan


def _finite_mean_rows(rows, values):
  """mean_std_rows, with `never` (inf) kept visible: a group with an inf value is 'never'
  for that column if every member is inf, else the finite mean and how many never reached."""
  out = []
  groups: dict[tuple, list] = {}
  for r in rows:
    groups.setdefault((r["condition"], r["method"]), []).append(r)
  for (cond, method), members in groups.items():
    row = {"condition": cond, "method": method}
    for v in values:
      x = np.asarray([m[v] for m in members], np.float64)
      never = int(np.sum(np.isinf(x) & (x > 0)))
      cell = mean_std_rows([{"v": xi} for xi in x[np.isfinite(x)]], (), ("v",))
      text = cell[0]["v"] if cell else "n/a"
      if never == len(x):
        text = "never"
      elif never:
        text += f" (never: {never})"
      row[v] = text
    out.append(row)
  return out


def _claims(rows, methods, names, speedup_key: str = "speedup") -> list[dict[str, Any]]:
  out = []
  for method in methods:
    if method == "uniform":
      continue
    def mean(key, conds):
      x = [r[key] for r in rows if r["method"] == method and r["condition"] in conds]
      x = np.asarray(x, np.float64)
      x = np.where(np.isinf(x), np.nan, x) if key.startswith("speedup") else x
      return float(np.nanmean(x)) if np.isfinite(x).any() else math.nan
    noisy = [c for c in names if c != "clean"]
    reached = [r for r in rows if r["method"] == method and r["condition"] in noisy]
    never = sum(r[speedup_key] == 0.0 for r in reached)
    out.append({
        "method": method, "loss_based": method in LOSS_BASED,
        "speedup_clean": mean(speedup_key, ["clean"]),
        "speedup_noisy": mean(speedup_key, noisy),
        "noisy_never_reached": f"{never}/{len(reached)}",
        "final_delta_clean": mean("final_minus_uniform", ["clean"]),
        "final_delta_noisy": mean("final_minus_uniform", noisy)})
  return out


def _verdict(claims) -> str:
  lines = []
  for c in claims:
    if not c["loss_based"]:
      continue
    faster = c["speedup_clean"] > 1.0
    degrades = (c["speedup_noisy"] < c["speedup_clean"] or
                c["final_delta_noisy"] < c["final_delta_clean"])
    lines.append(f"{c['method']}: clean speed-up {c['speedup_clean']:.2f} "
                 f"({'faster' if faster else 'not faster'} than uniform), noisy "
                 f"{c['speedup_noisy']:.2f}; final accuracy vs uniform "
                 f"{c['final_delta_clean']:+.4f} clean, {c['final_delta_noisy']:+.4f} noisy "
                 f"({'degrades' if degrades else 'does not degrade'} with noise).")
  held = [c for c in claims if c["loss_based"] and c["speedup_clean"] > 1.0 and
          (c["speedup_noisy"] < c["speedup_clean"] or
           c["final_delta_noisy"] < c["final_delta_clean"])]
  lines.append(f"The claim (faster when clean, worse with noise) held for {len(held)} of "
               f"{sum(c['loss_based'] for c in claims)} loss-based methods at this scale.")
  return " ".join(lines)
