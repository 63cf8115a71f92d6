"""noise_or_hard: which per-example score separates corrupted examples from hard clean ones.

Per dataset, corruption kind and level (one corrupted training set, `corruption.seed` = the
first seed), every seed trained at once (`num_seeds`), in 4 + K programs:

  standard     forgetting (Toneva's ranking, summed over seeds), cbtl, aum, el2n (over
               training), loss, confidence, variability: `metrics.difficulty`, combined over
               seeds by the registry's rule; el2n_early and grand_early: EL2N
               ||softmax - onehot||_2 and GraNd of the checkpoint of `early_epoch`, eval mode,
               averaged over seeds (Data Diet's recipe, at a CPU-sized epoch)
  turnover     memorization (0/1 form), generalization_error, cleanlab_turnover (1 - cleanlab's
               label quality of the flipped sub-network's out-of-sample probabilities)
  aum1, aum2   aum_flag: AUM threshold samples, sets 1 and 2; per seed, an example is flagged
               when every run in which it was not a threshold sample flags it
               (`estimators.aum_threshold.combine`); averaged over seeds
  fold0..K-1   cleanlab_kfold: 1 - cleanlab's label quality of the K-fold out-of-sample
               probabilities (averaged over seeds)

  corrupted       the positives: a changed label (label corruptions: random_labels redraws
                  from all C classes, so about 1/C keep theirs) or a corrupted image
  auroc           AUROC of the score for the corrupted examples (ties count one half)
  precision_at_n  the share of corrupted examples among the n highest scores, n = the number
                  of corrupted examples (ties broken by a random permutation, seed 0:
                  `metrics.difficulty.order`)
  hard_clean      clean examples (not corrupted) that the K-fold models, which never trained on them,
                  misclassify (argmax of the cross-validated probabilities != label)
  auroc_vs_hard   AUROC of the score for corrupted against hard_clean examples only: above
                  0.5, the score puts noise above hard clean examples

Higher = more likely corrupted for every score (the registry's "higher = harder").
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from regularity_jax.estimators import aum_threshold
from regularity_jax.estimators import label_issues
from regularity_jax.estimators.detection import auroc
from regularity_jax.metrics import difficulty
from regularity_jax.sweeps import figures
from regularity_jax.sweeps import final_model
from regularity_jax.sweeps import subruns
from regularity_jax.sweeps.errors import StudyError
from regularity_jax.sweeps.report import Report
from regularity_jax.training import RunResult

TITLE = "Noise or hard: which score separates corrupted from hard clean examples"
LABEL_KINDS = ("symmetric", "pair", "random_labels")
STANDARD_SCORES = ("forgetting", "cbtl", "aum", "el2n", "loss", "confidence", "variability")
TURNOVER_SCORES = ("memorization", "generalization_error", "cleanlab_turnover")


def check(config) -> None:
  seeds = [int(s) for s in config.seeds]
  if not seeds or seeds != list(range(seeds[0], seeds[0] + len(seeds))):
    raise StudyError(f"seeds={tuple(config.seeds)} must be consecutive (one vmapped program "
                     "trains seeds s..s+K-1), e.g. '(0, 1, 2)'")
  if int(config.folds) < 2:
    raise StudyError(f"folds={config.folds} must be >= 2")
  if not 1 <= int(config.early_epoch) <= int(config.base.num_epochs):
    raise StudyError(f"early_epoch={config.early_epoch} must be in [1, base.num_epochs]")
  unknown = set(config.scores) - set(_SCORE_SOURCES)
  if unknown:
    raise StudyError(f"unknown scores {sorted(unknown)}; choose from {tuple(_SCORE_SOURCES)}")


def conditions(config):
  for dataset in config.datasets:
    for kind in config.corruptions:
      for level in config.levels:
        yield dataset, kind, float(level)


def prefix(dataset: str, kind: str, level: float) -> str:
  return f"{dataset}_{kind}{round(100 * level)}"


def roles(config) -> dict[str, dict[str, Any]]:
  """The overrides of each run of one condition, by role."""
  early, epochs = int(config.early_epoch), int(config.base.num_epochs)
  out = {"standard": {"checkpoint_every": early, "keep_checkpoints": epochs // early + 1},
         "turnover": {"turnover.enabled": True, "turnover.rate": float(config.turnover_rate),
                      "turnover.label_issues": True},
         "aum1": {"aum_threshold.set": 1}, "aum2": {"aum_threshold.set": 2}}
  for k in range(int(config.folds)):
    out[f"fold{k}"] = {"holdout.folds": int(config.folds), "holdout.fold": k,
                       "holdout.seed": int(config.seeds[0])}
  return out


def run_config(config, dataset, kind, level, overrides):
  seed = int(config.seeds[0])
  return subruns.derive_config(config.base, {
      "dataset": dataset, "data_dir": subruns.data_dir_for(config, dataset), "seed": seed,
      "num_seeds": len(config.seeds), "corruption.kind": kind, "corruption.fraction": level,
      "corruption.seed": seed, **overrides})


def sweep(config, runs) -> dict[str, Any]:
  """Every run, plus `early:<prefix>` = {el2n, grand} f32[N] (seed means) from the standard
  run's checkpoint of `early_epoch`."""
  records: dict[str, Any] = {}
  for dataset, kind, level in conditions(config):
    name = prefix(dataset, kind, level)
    for role, overrides in roles(config).items():
      records[f"{name}_{role}"] = runs.run(f"{name}_{role}",
                                           run_config(config, dataset, kind, level, overrides))
    cfg = run_config(config, dataset, kind, level, roles(config)["standard"])
    records[f"early:{name}"] = early_scores(cfg, records[f"{name}_standard"],
                                            int(config.early_epoch))
  return records


def early_scores(cfg, result: RunResult, epoch: int) -> dict[str, np.ndarray]:
  """EL2N and GraNd f32[N] of the checkpoint of `epoch`, eval mode, averaged over seeds."""
  el2n, grand, dataset = [], [], None
  for k in range(int(cfg.num_seeds)):
    model = final_model.load(cfg, result.workdir, epoch=epoch, dataset=dataset,
                             replica=k if int(cfg.num_seeds) > 1 else None)
    dataset = model.dataset
    if not np.array_equal(dataset.train.ids, result.scores["train/example_id"]):
      raise StudyError("scores.npz rows do not match the loaded dataset; was the data changed?")
    x, y = dataset.train.images, dataset.train.labels
    logits = final_model.predict(model, x)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    el2n.append(np.linalg.norm(probs - np.eye(probs.shape[1])[y], axis=1))
    grand.append(final_model.grand(model, x, y))
  return {"el2n": np.mean(el2n, 0).astype(np.float32),
          "grand": np.mean(grand, 0).astype(np.float32)}


def per_seed(scores: Mapping[str, np.ndarray], key: str) -> list[np.ndarray]:
  """The per-seed columns train/seed<k>/<key> (or train/<key> of a one-seed run)."""
  seeds = difficulty.seeds_in(scores, "train")
  if not seeds:
    return [np.asarray(scores[f"train/{key}"])]
  return [np.asarray(scores[f"train/seed{k}/{key}"]) for k in seeds]


def corrupted(scores: Mapping[str, np.ndarray], kind: str) -> np.ndarray:
  if kind in LABEL_KINDS:
    return np.asarray(scores["train/label"]) != np.asarray(scores["train/original_label"])
  return np.asarray(scores["train/corrupted"], bool)


def condition_scores(config, records, name: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
  """{score: f32[N]} in the standard run's row order, and the K-fold argmax i32[N]."""
  std, turn = records[f"{name}_standard"].scores, records[f"{name}_turnover"].scores
  ids = np.asarray(std["train/example_id"])
  for other in ("turnover", "aum1", "aum2"):
    if not np.array_equal(records[f"{name}_{other}"].scores["train/example_id"], ids):
      raise StudyError(f"{name}_{other} scores other training examples than {name}_standard")
  out = {s: difficulty.from_scores(s, std) for s in STANDARD_SCORES}
  out.update({s: difficulty.from_scores(s, turn) for s in TURNOVER_SCORES})
  flags = [aum_threshold.combine(a, b) for a, b in zip(
      per_seed(records[f"{name}_aum1"].scores, "aum_threshold_flag"),
      per_seed(records[f"{name}_aum2"].scores, "aum_threshold_flag"))]
  out["aum_flag"] = np.mean(flags, 0).astype(np.float32)
  early = records[f"early:{name}"]
  out["el2n_early"], out["grand_early"] = early["el2n"], early["grand"]
  folds = [records[f"{name}_fold{k}"].scores for k in range(int(config.folds))]
  cv_ids, labels, probs = label_issues.cross_validated_probs(folds)
  if not np.array_equal(cv_ids, np.sort(ids)):
    raise StudyError(f"{name}: the fold runs do not hold out every training example once")
  order = np.searchsorted(cv_ids, ids)
  _, quality = label_issues.find_label_issues(labels, probs)
  out["cleanlab_kfold"] = (1.0 - quality[order]).astype(np.float32)
  return {s: out[s] for s in config.scores}, np.argmax(probs, 1)[order]


_SCORE_SOURCES = dict.fromkeys(STANDARD_SCORES + TURNOVER_SCORES + (
    "aum_flag", "el2n_early", "grand_early", "cleanlab_kfold"))


def precision_at_n(score: np.ndarray, positives: np.ndarray) -> float:
  n = int(positives.sum())
  top = difficulty.order(score, seed=0, descending=True)[:n]
  return float(np.mean(positives[top])) if n else float("nan")


def measure(config, records: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
  """rows: per condition and score; summary: per dataset and score, means over conditions;
  by_kind: per corruption kind and score (means over datasets and levels)."""
  rows = []
  for dataset, kind, level in conditions(config):
    name = prefix(dataset, kind, level)
    std = records[f"{name}_standard"].scores
    positives = corrupted(std, kind)
    labels = np.asarray(std["train/label"])
    clean = ~np.asarray(std["train/corrupted"], bool)  # random_labels may keep a label
    scores, kfold_pred = condition_scores(config, records, name)
    hard = clean & (kfold_pred != labels)
    both = positives | hard
    for score_name, value in scores.items():
      rows.append({"dataset": dataset, "corruption": kind, "level": level, "score": score_name,
                   "auroc": auroc(value, positives),
                   "precision_at_n": precision_at_n(value, positives),
                   "auroc_vs_hard": auroc(value[both], positives[both]),
                   "corrupted": int(positives.sum()), "hard_clean": int(hard.sum())})
  return {"rows": rows, "summary": _means(rows, ("dataset", "score")),
          "by_kind": _means(rows, ("corruption", "score"))}


def _means(rows, by) -> list[dict[str, Any]]:
  groups: dict[tuple, list[dict[str, Any]]] = {}
  for r in rows:
    groups.setdefault(tuple(r[k] for k in by), []).append(r)
  out = []
  for key, members in groups.items():
    row = dict(zip(by, key))
    for metric in ("auroc", "precision_at_n", "auroc_vs_hard"):
      row[metric] = float(np.nanmean([m[metric] for m in members]))
    row["conditions"] = len(members)
    out.append(row)
  return out


FORMATS = {"auroc": ".3f", "precision_at_n": ".3f", "auroc_vs_hard": ".3f", "level": ".0%"}


def report(config, records, measured, report: Report, runs) -> None:
  b = config.base
  report.note("setup", (
      f"{', '.join(config.datasets)}: {b.train_subset or 'all'} training / "
      f"{b.test_subset or 'all'} test examples; model {b.model} {b.model_kwargs.to_dict()}; "
      f"{b.optimizer} lr {b.learning_rate} momentum {b.momentum}, batch {b.batch_size}, "
      f"{b.num_epochs} epochs; seeds {tuple(config.seeds)} trained together, one corrupted set "
      f"per condition (corruption seed {config.seeds[0]}); corruptions "
      f"{tuple(config.corruptions)} at {tuple(config.levels)}; EL2N early and GraNd at epoch "
      f"{config.early_epoch}; {config.folds}-fold cleanlab; turn-over rate "
      f"{config.turnover_rate}"))
  report.note("runs", runs.summary())
  report.heading("The table: each score against the corrupted examples (means over conditions)")
  summary = sorted(measured["summary"], key=lambda r: (r["dataset"], -r["auroc"]))
  report.table(summary, formats=FORMATS)
  report.heading("By corruption kind (means over datasets and levels)")
  report.table(_pivot(measured["by_kind"], "corruption", "auroc"), formats=_float_formats(
      measured["by_kind"], "corruption"))
  report.paragraph("AUROC for corrupted against hard-but-clean examples (auroc_vs_hard):")
  report.table(_pivot(measured["by_kind"], "corruption", "auroc_vs_hard"),
               formats=_float_formats(measured["by_kind"], "corruption"))
  report.paragraph(verdict(measured))
  _heatmap(report, measured["rows"], "auroc", "noise_or_hard_auroc.png",
           "AUROC of each score for the corrupted examples, per condition")
  _heatmap(report, measured["rows"], "auroc_vs_hard", "noise_or_hard_vs_hard.png",
           "AUROC of each score for corrupted against hard-but-clean examples, per condition")
  report.heading("Every condition", level=3)
  report.table(measured["rows"], formats=FORMATS)


def _pivot(rows, column: str, metric: str) -> list[dict[str, Any]]:
  scores = list(dict.fromkeys(r["score"] for r in rows))
  out = []
  for s in scores:
    row = {"score": s}
    for r in rows:
      if r["score"] == s:
        row[r[column]] = r[metric]
    out.append(row)
  return out


def _float_formats(rows, column):
  return {r[column]: ".3f" for r in rows}


def _heatmap(report, rows, metric, name, caption):
  scores = list(dict.fromkeys(r["score"] for r in rows))
  conds = list(dict.fromkeys((r["dataset"], r["corruption"], r["level"]) for r in rows))
  grid = np.full((len(scores), len(conds)), np.nan)
  for r in rows:
    grid[scores.index(r["score"]), conds.index((r["dataset"], r["corruption"], r["level"]))] = (
        r[metric])
  fig, (ax,) = figures.subplots(1, width=max(6.0, 0.45 * len(conds) + 2),
                                height=0.3 * len(scores) + 2)
  im = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="RdBu_r", aspect="auto")
  ax.set_yticks(range(len(scores)), scores, fontsize=7)
  ax.set_xticks(range(len(conds)), [f"{d[:5]} {k} {l:.0%}" for d, k, l in conds], rotation=90,
                fontsize=6)
  fig.colorbar(im, ax=ax, label=metric)
  report.figure(fig, name, caption)


def verdict(measured) -> str:
  """A few sentences from the numbers (no claim without them)."""
  by_kind = measured["by_kind"]
  label_rows = [r for r in by_kind if r["corruption"] in LABEL_KINDS]
  image_rows = [r for r in by_kind if r["corruption"] not in LABEL_KINDS]
  lines = []
  for rows, what in ((label_rows, "label noise"), (image_rows, "image noise")):
    if not rows:
      continue
    means = _means(rows, ("score",))
    best = sorted(means, key=lambda r: -r["auroc"])[:3]
    hard = sorted(means, key=lambda r: -r["auroc_vs_hard"])[:3]
    lines.append(f"For {what}, the best detectors (mean AUROC) are " + ", ".join(
        f"{r['score']} {r['auroc']:.3f}" for r in best) + "; against hard clean examples "
        "the best separators are " + ", ".join(f"{r['score']} {r['auroc_vs_hard']:.3f}"
                                                for r in hard) + ".")
    worst = sorted(means, key=lambda r: r["auroc_vs_hard"])[:2]
    lines.append(f"Least able to tell {what} from hard clean examples: " + ", ".join(
        f"{r['score']} {r['auroc_vs_hard']:.3f}" for r in worst) + ".")
  return " ".join(lines)
