"""toneva_tables: unforgettable examples of MNIST and permuted MNIST over 5 seeds (Toneva 2019).

Every number comes from the small per-run results (`extract`: WORKDIR/runs/<name>/ with
metrics.jsonl, config.json, forgetting.npz, timing.json), so the report is recomputed from what
is committed, without the run directories:

  unforgettable (seed)      share of training examples learned and never forgotten in the seed
                            (`train/unforgettable`, presentation stream)
  unforgettable (combined)  Toneva's rule over the seeds present (`metrics.seeds.combine`):
                            learned in every seed and never forgotten in any
  by epoch e                the same, with only the first e epochs counted
                            (`metrics.seeds.unforgettable_by_epoch`, from each seed's
                            first_learned and first_forgotten: one presentation per epoch)
  flattening                combined fraction at the last epoch minus at 90% of the epochs,
                            in points
  test error                1 - test accuracy of the last evaluation
  wall s / epoch            mean of train_time_s + eval_time_s over metrics.jsonl's epochs
  CPU s / epoch             process CPU time (user + system, `resource`) of the invocation
                            that finished the run, over the epochs it trained (timing.json)
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import resource
import shutil
import time
from typing import Any, Mapping

import numpy as np

from regularity_jax.metrics import seeds as seeds_lib
from regularity_jax.runs import scores_file
from regularity_jax.sweeps import figures
from regularity_jax.sweeps import subruns
from regularity_jax.sweeps import SubRuns
from regularity_jax.sweeps.errors import StudyError
from regularity_jax.sweeps.report import Report

TITLE = "Toneva et al. 2019's MNIST and permuted-MNIST tables: unforgettable examples over seeds"

# The paper's numbers (Toneva et al. 2019, arXiv 1812.05159, Table 1 / Sec. 4; SPEC.md).
PAPER_UNFORGETTABLE = {"mnist": 0.917, "permuted_mnist": 0.753}
PAPER_TEST_ERROR = {"mnist": 0.008}
PAPER_SEEDS = 5
WITHIN = 0.01  # "within 1 point"

SMALL_FILE = "forgetting.npz"
# The per-example columns the committed results keep (train split; all i32 or bool).
SMALL_COLUMNS = ("example_id", "label", "original_label", "corrupted", "forgetting_events",
                 "learning_events", "first_learned", "first_forgotten", "unforgettable",
                 "never_learned", "observations", "forgetting_score")

PROTOCOL_COMPARISON = """\
Protocol compared line by line with Toneva's code (github.com/mtoneva/example_forgetting,
run_mnist.py, README "MNIST and permuted MNIST": `--no_dropout --seed s`, s = 1..5, defaults
otherwise):
- Model: `Net`, conv 10 5x5, max-pool 2, ReLU, conv 20 5x5, max-pool 2, ReLU, dense 50, ReLU,
  dense 10, no dropout; here toneva_cnn with dropout 0. Same.
- Weight initialization: PyTorch's defaults of Conv2d/Linear, kaiming_uniform(a=sqrt(5)), i.e.
  U(+-1/sqrt(fan_in)) for the weights and U(+-1/sqrt(fan_in)) for the biases; toneva_cnn draws
  the same distributions (variance_scaling(1/3, fan_in, uniform) and a U(+-1/sqrt(fan_in))
  bias). Same distributions, other random streams (torch vs jax.random).
- Loss: log_softmax then CrossEntropyLoss (a second log_softmax, which leaves log-probabilities
  unchanged): the softmax cross-entropy, averaged over the batch. Same.
- Optimizer: SGD lr 0.01, momentum 0.5, no weight decay, no schedule, batch 64, 200 epochs.
  Same.
- Input normalization: ToTensor (u8 / 255), then Normalize with the constants (0.1307,),
  (0.3081,); here the mean and std of the 60,000 training images (0.13066, 0.30811): the same
  to 4 decimals. Permuted MNIST: Toneva normalizes then permutes; here the permutation comes
  first and the statistics after it; with one global mean and std both orders give the same
  images.
- Per-epoch reshuffle: `npr.permutation` of all 60,000 indices every epoch (NumPy seeded once
  with the run's seed), batches of 64 in that order, the last batch of 32 kept; here a fresh
  permutation every epoch from the run's seed (jax.random, `data.batching`), the last batch
  padded and masked: also 938 steps of which the last has 32 examples. Same scheme, other
  random streams.
- Statistics: accuracy of each example in the train-mode forward pass of the step that trains
  on it, before the update; a forgetting event is a 1 -> 0 transition between consecutive
  presentations; summed over seeds, a never-learned example counts its presentations;
  unforgettable = total 0 (order_examples_by_forgetting.py). Same (`metrics.forgetting`,
  `metrics.seeds`).
- Seed rule: seeds 1..5, each seeding torch (initialization) and NumPy (order). Here seeds 0..4,
  each seeding initialization and order through jax.random. Same number of independent runs.
- Permutation: Toneva draws it with `torch.randperm(784)` right after
  `torch.manual_seed(seed)`, so each of the 5 seeds trains on ANOTHER permutation of the
  pixels, and the combination is over 5 different permuted datasets; here one permutation
  (permutation_seed) is shared by every seed. A difference to keep in mind for permuted MNIST.
- Test evaluation: every epoch in Toneva's code (it changes nothing in training); here every
  20 epochs and at the last one."""


@dataclasses.dataclass
class SmallRun:
  """The committed results of one run (`extract`), read back by `load_small`."""
  name: str
  dataset: str
  seed: int
  metrics: list[dict[str, Any]]
  config: dict[str, Any]
  arrays: dict[str, np.ndarray]   # train/<SMALL_COLUMNS>, each [N]
  provenance: dict[str, Any]
  timing: dict[str, float]


def run_name(dataset: str, seed: int) -> str:
  return f"{dataset}_seed{seed}"


def grid(config):
  """(run name, dataset, seed, overrides of `base`) of every run."""
  for dataset in config.datasets:
    for seed in config.seeds:
      overrides = {"dataset": "mnist", "data_dir": str(config.mnist_dir), "seed": int(seed),
                   "permute_pixels.enabled": dataset == "permuted_mnist",
                   "permute_pixels.seed": int(config.permutation_seed)}
      yield run_name(dataset, int(seed)), dataset, int(seed), overrides


def check(config) -> None:
  for dataset in config.datasets:
    if dataset not in PAPER_UNFORGETTABLE:
      raise StudyError(f"dataset {dataset!r} is not one of Toneva's MNIST tables; set "
                       f"--config.datasets to a subset of {tuple(PAPER_UNFORGETTABLE)}")
  if not config.seeds:
    raise StudyError("no seeds; set --config.seeds, e.g. '(0, 1, 2, 3, 4)'")
  names = [name for name, *_ in grid(config)]
  if config.only and config.only not in names:
    raise StudyError(f"only={config.only!r} is not a run of this study; set --config.only to "
                     f"one of {', '.join(names)} (or '' for all)")


def _cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def extract(run_dir: str | pathlib.Path, dest: str | pathlib.Path,
            timing: Mapping[str, float] | None = None) -> pathlib.Path:
  """Writes the small results of a finished run to `dest` (created): metrics.jsonl and
  config.json copied, forgetting.npz (compressed: train/<SMALL_COLUMNS> [N] and the scores'
  provenance, readable by `runs.scores_file.load`), and timing.json when `timing` is given.
  forgetting.npz is written last (tmp file, then rename): its presence marks a complete copy.

  Returns:
    dest/forgetting.npz.
  """
  run_dir, dest = pathlib.Path(run_dir), pathlib.Path(dest)
  scores = scores_file.load(run_dir / "scores.npz", what="run")
  missing = [c for c in SMALL_COLUMNS if f"train/{c}" not in scores]
  if missing:
    raise StudyError(f"{run_dir}/scores.npz lacks {missing}; rerun it with this version (its "
                     "forgetting kernel records first_forgotten)")
  dest.mkdir(parents=True, exist_ok=True)
  for name in ("metrics.jsonl", "config.json"):
    shutil.copyfile(run_dir / name, dest / name)
  if timing is not None:
    (dest / "timing.json").write_text(json.dumps(dict(timing), indent=2, sort_keys=True))
  arrays = {f"train/{c}": np.asarray(scores[f"train/{c}"]) for c in SMALL_COLUMNS}
  arrays[scores_file.PROVENANCE_KEY] = np.asarray(json.dumps(scores.provenance, sort_keys=True))
  tmp = dest / (SMALL_FILE + ".tmp")
  with tmp.open("wb") as f:
    np.savez_compressed(f, **arrays)
  tmp.replace(dest / SMALL_FILE)
  return dest / SMALL_FILE


def load_small(directory: str | pathlib.Path, dataset: str, seed: int) -> SmallRun:
  directory = pathlib.Path(directory)
  loaded = scores_file.load(directory / SMALL_FILE, what="results")
  metrics = [json.loads(line) for line in (directory / "metrics.jsonl").read_text().splitlines()
             if line.strip()]
  timing_path = directory / "timing.json"
  return SmallRun(name=directory.name, dataset=dataset, seed=seed, metrics=metrics,
                  config=json.loads((directory / "config.json").read_text()),
                  arrays=loaded.arrays, provenance=loaded.provenance,
                  timing=json.loads(timing_path.read_text()) if timing_path.is_file() else {})


def _logged_epochs(run_dir: pathlib.Path) -> int:
  path = run_dir / "metrics.jsonl"
  if not path.is_file():
    return 0
  lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
  return int(lines[-1]["epoch"]) if lines else 0


def sweep(config, runs: SubRuns) -> dict[str, Any]:
  """Trains (or resumes, or reuses) the runs not yet extracted, extracts each, and reads back
  every extracted run. Full runs: RUNS_DIR/runs/<name>; small results: WORKDIR/runs/<name>."""
  workdir = runs.root.parent
  training = SubRuns(pathlib.Path(config.runs_dir) if config.runs_dir else workdir / "training")
  found, missing = {}, []
  for name, dataset, seed, overrides in grid(config):
    small = workdir / "runs" / name
    if config.train and (not config.only or name == config.only) and not (
        small / SMALL_FILE).is_file():
      run_config = subruns.derive_config(config.base, overrides)
      before = _logged_epochs(training.path(name))
      cpu, wall = _cpu_seconds(), time.perf_counter()
      result = training.run(name, run_config)
      extract(result.workdir, small, timing={
          "cpu_s": _cpu_seconds() - cpu, "wall_s": time.perf_counter() - wall,
          "epochs": int(run_config.num_epochs) - before})
    if (small / SMALL_FILE).is_file():
      found[name] = load_small(small, dataset, seed)
    else:
      missing.append(name)
  return {"runs": found, "missing": missing, "training": training.summary()}


def _wall_per_epoch(run: SmallRun) -> float:
  times = [r.get("train_time_s", 0.0) + r.get("eval_time_s", 0.0) for r in run.metrics]
  return float(np.mean(times)) if times else float("nan")


def _test_error(run: SmallRun) -> float:
  for record in reversed(run.metrics):
    if "test_accuracy" in record:
      return 1.0 - float(record["test_accuracy"])
  return float("nan")


def combined_scores(per_seed: list[SmallRun]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
  """The seed-combined scores.npz columns (`scores_file.combine_replicas`, as a num_seeds=K run
  writes them) and its provenance (the runs' own, with every seed). StudyError if the runs did
  not score the same examples of the same data."""
  first = per_seed[0]
  for run in per_seed[1:]:
    theirs = {k: v for k, v in run.provenance.items() if k != "seeds"}
    mine = {k: v for k, v in first.provenance.items() if k != "seeds"}
    if theirs != mine or not np.array_equal(run.arrays["train/example_id"],
                                            first.arrays["train/example_id"]):
      raise StudyError(f"{run.name} and {first.name} scored other data (provenance or ids "
                       "differ); rerun one of them with the study's config")
  columns = scores_file.combine_replicas([dict(run.arrays) for run in per_seed])
  prov = dict(first.provenance, seeds=[int(s) for run in per_seed for s in run.provenance["seeds"]])
  return columns, prov


def measure(config, records: Mapping[str, Any]) -> dict[str, Any]:
  runs: Mapping[str, SmallRun] = records["runs"]
  per_seed_rows, summary, curves, combined = [], [], {}, {}
  for dataset in config.datasets:
    members = sorted((r for r in runs.values() if r.dataset == dataset), key=lambda r: r.seed)
    for run in members:
      a = run.arrays
      timing = run.timing
      per_seed_rows.append({
          "dataset": dataset, "seed": run.seed, "epochs": run.metrics[-1]["epoch"],
          "unforgettable": float(np.mean(a["train/unforgettable"])),
          "forgetting_events_mean": float(np.mean(a["train/forgetting_events"])),
          "never_learned": float(np.mean(a["train/never_learned"])),
          "test_error": _test_error(run), "wall_s_per_epoch": _wall_per_epoch(run),
          "cpu_s_per_epoch": (timing["cpu_s"] / timing["epochs"]
                              if timing.get("epochs") else float("nan"))})
    if not members:
      continue
    columns, prov = combined_scores(members)
    combined[dataset] = (columns, prov)
    epochs = {int(r.metrics[-1]["epoch"]) for r in members}
    if len(epochs) != 1:
      raise StudyError(f"{dataset}: the seeds ran {sorted(epochs)} epochs; rerun them alike")
    num_epochs = epochs.pop()
    curve = seeds_lib.unforgettable_by_epoch(
        np.stack([r.arrays["train/first_learned"] for r in members]),
        np.stack([r.arrays["train/first_forgotten"] for r in members]), num_epochs)
    curves[dataset] = curve
    fraction = float(np.mean(columns["train/unforgettable"]))
    at = max(1, int(round(0.9 * num_epochs)))
    fractions = np.array([r["unforgettable"] for r in per_seed_rows if r["dataset"] == dataset])
    errors = np.array([r["test_error"] for r in per_seed_rows if r["dataset"] == dataset])
    paper = PAPER_UNFORGETTABLE[dataset]
    summary.append({
        "dataset": dataset, "seeds": len(members), "epochs": num_epochs,
        "examples": len(columns["train/unforgettable"]),
        "unforgettable_combined": fraction, "paper": paper,
        "difference_points": 100 * (fraction - paper),
        "within_1_point": bool(abs(fraction - paper) <= WITHIN + 1e-12),
        "seed_fraction_mean": float(fractions.mean()),
        "seed_fraction_std": float(fractions.std(ddof=1)) if len(fractions) > 1 else float("nan"),
        "test_error_mean": float(np.nanmean(errors)),
        "paper_test_error": PAPER_TEST_ERROR.get(dataset, float("nan")),
        "flattening_points": 100 * float(curve[-1] - curve[at - 1]),
        "flattening_from_epoch": at})
  return {"summary": summary, "per_seed": per_seed_rows, "curves": curves,
          "combined": combined, "missing": list(records["missing"])}


def curve_rows(curves: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
  """A few epochs of each dataset's combined curve (1, 5, 10, 20, 50, 100, 150, 200 and the
  last), one row per epoch."""
  last = max(len(c) for c in curves.values())
  epochs = sorted({e for e in (1, 5, 10, 20, 50, 100, 150, 200) if e <= last} | {last})
  return [{"epoch": e, **{d: (float(c[e - 1]) if e <= len(c) else float("nan"))
                          for d, c in curves.items()}} for e in epochs]


def write_combined(directory: pathlib.Path, combined) -> dict[str, pathlib.Path]:
  """WORKDIR/<dataset>/scores.npz of every dataset: what `pruning.scores_path` takes."""
  out = {}
  for dataset, (columns, prov) in combined.items():
    (directory / dataset).mkdir(parents=True, exist_ok=True)
    out[dataset] = directory / dataset / "scores.npz"
    scores_file.write(out[dataset], columns, prov)
  return out


SUMMARY_FORMATS = {"unforgettable_combined": ".2%", "paper": ".1%", "difference_points": "+.2f",
                   "seed_fraction_mean": ".2%", "seed_fraction_std": ".2%",
                   "test_error_mean": ".2%", "paper_test_error": ".1%",
                   "flattening_points": "+.2f"}
PER_SEED_FORMATS = {"unforgettable": ".2%", "forgetting_events_mean": ".3f",
                    "never_learned": ".3%", "test_error": ".2%", "wall_s_per_epoch": ".2f",
                    "cpu_s_per_epoch": ".2f"}


def report(config, records, measured, report: Report, runs) -> None:
  del runs  # the training runs are in records["training"] (another root)
  b = config.base
  report.add_seeds(config.seeds)
  report.note("setup", (f"{', '.join(config.datasets)}: {b.train_subset or 'all 60,000'} training"
                        f" / {b.test_subset or 'all 10,000'} test examples; {b.model} "
                        f"{b.model_kwargs.to_dict()}; {b.optimizer} lr {b.learning_rate} "
                        f"momentum {b.momentum}, batch {b.batch_size}, {b.num_epochs} epochs; "
                        f"eval every {b.eval_every}; pixel permutation seed "
                        f"{config.permutation_seed}"))
  report.note("runs", records["training"])
  summary, missing = measured["summary"], measured["missing"]
  if missing:
    report.paragraph(f"**In progress**: {len(missing)} of {len(missing) + len(records['runs'])} "
                     f"runs have no results yet ({', '.join(missing)}); every number below "
                     "is over the runs present.")
  report.heading("Unforgettable examples, seeds combined by Toneva's rule, against the paper")
  report.table(summary, formats=SUMMARY_FORMATS)
  report.paragraph(f"Paper: MNIST 91.7%, permuted MNIST 75.3% unforgettable over {PAPER_SEEDS} "
                   "seeds; MNIST test error 0.8%. `flattening_points`: change of the combined "
                   "fraction from `flattening_from_epoch` to the last epoch.")
  report.heading("Each seed")
  report.table(measured["per_seed"], formats=PER_SEED_FORMATS)
  if measured["curves"]:
    report.heading("The combined fraction against epochs")
    report.table(curve_rows(measured["curves"]),
                 formats={d: ".2%" for d in measured["curves"]})
    fig, (ax,) = figures.subplots(1, width=6.0, height=3.5)
    for dataset, curve in measured["curves"].items():
      ax.plot(np.arange(1, len(curve) + 1), curve, label=dataset)
      if dataset in PAPER_UNFORGETTABLE:
        ax.axhline(PAPER_UNFORGETTABLE[dataset], ls=":", color="gray")
    ax.set(xlabel="epochs counted", ylabel="unforgettable over every seed")
    ax.legend()
    report.figure(fig, "unforgettable_by_epoch.png", "Seed-combined unforgettable fraction if "
                  "training had stopped after each epoch (dotted: the paper's values)")
    fig, axes = figures.subplots(len(measured["combined"]), width=5.0, height=3.5)
    for ax, (dataset, (columns, _)) in zip(axes, measured["combined"].items()):
      score = np.asarray(columns["train/forgetting_score"])
      counts = np.bincount(score.astype(np.int64))
      ax.bar(np.arange(len(counts)), counts)
      ax.set(xlabel="forgetting events summed over seeds (never learned: presentations)",
             ylabel="examples", yscale="log", title=f"{dataset}: {np.mean(score == 0):.1%} at 0")
    report.figure(fig, "forgetting_histogram.png", "Histogram of the seed-combined forgetting "
                  "score (Toneva's ranking score)")
  paths = write_combined(report.workdir, measured["combined"])
  if paths:
    report.paragraph("Seed-combined scores (`--config.pruning.scores_path` takes them): " + ", ".join(
        f"[{d}/scores.npz]({d}/scores.npz)" for d in paths))
  _grids(config, measured, report)
  report.heading("Cost")
  report.paragraph("Wall seconds per epoch from metrics.jsonl (train + eval time of each "
                   "epoch, compilation excluded); CPU seconds per epoch from the process CPU "
                   "time of the invocation that finished the run (timing.json; data loading and "
                   "compilation included; two cores give up to 2 CPU seconds per wall second). "
                   "See the per-seed table.")
  off = [r for r in summary if not r["within_1_point"]]
  report.heading("Verdict")
  report.paragraph(_verdict(summary))
  if off:
    report.heading("Checklist (issue 30) for the datasets not within 1 point")
    for row in off:
      seeds_rows = [r for r in measured["per_seed"] if r["dataset"] == row["dataset"]]
      fractions = [r["unforgettable"] for r in seeds_rows]
      curve = measured["curves"][row["dataset"]]
      report.bullets([
          f"**{row['dataset']}**: combined {row['unforgettable_combined']:.2%} vs paper "
          f"{row['paper']:.1%} ({row['difference_points']:+.2f} points, {row['seeds']} seeds, "
          f"{row['epochs']} epochs)",
          "per-seed fractions: " + ", ".join(f"seed {r['seed']} {r['unforgettable']:.2%}"
                                             for r in seeds_rows)
          + f"; spread {100 * (max(fractions) - min(fractions)):.2f} points (max - min), std "
          f"{row['seed_fraction_std']:.2%}",
          f"final test error {row['test_error_mean']:.2%} (mean over seeds) vs paper "
          + (f"{row['paper_test_error']:.1%}" if np.isfinite(row["paper_test_error"])
             else "(not reported)"),
          f"combined fraction vs epochs: {curve[0]:.2%} after 1 epoch, "
          f"{curve[min(len(curve), 50) - 1]:.2%} after {min(len(curve), 50)}, {curve[-1]:.2%} "
          f"after {len(curve)}; {row['flattening_points']:+.2f} points over the last "
          f"{row['epochs'] - row['flattening_from_epoch']} epochs",
          "protocol: compared line by line with Toneva's code below"])
  report.heading("Protocol against Toneva's code")
  report.preformatted(PROTOCOL_COMPARISON)


def _verdict(summary) -> str:
  if not summary:
    return "No run has results yet."
  parts = []
  for row in summary:
    done = row["seeds"] >= PAPER_SEEDS
    parts.append(f"{row['dataset']}: {row['unforgettable_combined']:.2%} unforgettable over "
                 f"{row['seeds']} seed(s) x {row['epochs']} epochs x {row['examples']} examples "
                 f"(paper {row['paper']:.1%}: {row['difference_points']:+.2f} points, "
                 f"{'within' if row['within_1_point'] else 'not within'} 1 point"
                 f"{'' if done else '; fewer seeds than the paper: more seeds can only lower it'})")
  return "; ".join(parts) + "."


def _grids(config, measured, report: Report) -> None:
  """Per dataset and class, the k most forgotten and k unforgettable examples (combined
  score), drawn from the unpermuted MNIST images (the permuted ones look like noise)."""
  if not measured["combined"]:
    return
  from regularity_jax import data  # pylint: disable=g-import-not-at-top
  from regularity_jax.report import figures as report_figures  # pylint: disable=g-import-not-at-top
  from regularity_jax.report import selection  # pylint: disable=g-import-not-at-top
  b = config.base
  try:
    dataset = data.load_dataset("mnist", str(config.mnist_dir) or None,
                                train_subset=b.train_subset or None,
                                test_subset=b.test_subset or None, subset_seed=b.subset_seed)
  except data.DataError as e:
    report.paragraph(f"No example grids: MNIST did not load ({e}).")
    return
  report.heading("Examples: most forgotten and unforgettable, per class")
  for name, (columns, _) in measured["combined"].items():
    if not np.array_equal(columns["train/example_id"], dataset.train.ids):
      report.paragraph(f"No grid for {name}: its ids are not those of mnist_dir's examples.")
      continue
    grids = selection.score_grids(columns, "train", ["forgetting"], k=int(config.grid_k))
    path = report.workdir / f"grid_{name}.png"
    report_figures.score_figure(
        grids, dataset.train.images, {i: i for i in range(len(dataset.train))},
        dataset.class_names, path, k=int(config.grid_k), pixel_mean=dataset.pixel_mean,
        pixel_std=dataset.pixel_std, title=f"{name}: seed-combined forgetting score")
    report.paragraph(f"![{name}]({path.name})\n\n*{name}: per class, the {config.grid_k} most "
                     f"forgotten (left) and least forgotten (right) training examples over the "
                     "seeds" + (", shown unpermuted" if name == "permuted_mnist" else "") + "*")
