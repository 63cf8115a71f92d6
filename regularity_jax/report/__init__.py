"""The run report: report.html and PNG grids of the examples each score ranks first and last.

  from regularity_jax import report
  report.write(workdir)                 # any finished run directory; loads its data again
  report.write(workdir, dataset=ds)     # at the end of a run (training/loop.py), data in hand

writes, inside the run directory,

  report.html                 one self-contained page (opens offline from the file system):
                              summary, learning curves, forgetting histogram, margin
                              distributions, per class the k hardest and easiest training
                              examples by every tracked score, the data map with the examples of
                              each region, test examples by CBGL and mal-generalizing events,
                              the config and the provenance
  plots/grids/<split>_<score>.png   the same grids as PNG files (papers, README)

  selection   which examples: through the score registry and its tie rule (metrics.difficulty)
  thumbnails  each shown example encoded once (a sprite sheet per split; SVG symbols for 1-D)
  page        the HTML
  figures     the PNG grids

From the command line: `python -m experiments.report --workdir=RUN`.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import numpy as np

from regularity_jax.report import figures
from regularity_jax.report import page
from regularity_jax.report import selection
from regularity_jax.report.selection import Grid
from regularity_jax.runs import scores_file

REPORT_NAME = "report.html"
GRIDS_DIR = "plots/grids"
PLOT_CAPTIONS = (("learning_curves.png", "learning curves"),
                 ("forgetting_histogram.png", "forgetting histogram"),
                 ("margin_distributions.png", "margin distributions"),
                 ("margin_distribution_over_time.png", "margin distribution over time"),
                 ("data_map.png", "data map"))


class ReportError(ValueError):
  """A report cannot be written for this directory (one line: the problem and the fix)."""


def write(workdir: str | os.PathLike, *, dataset=None, data_dir: str | None = None,
          k: int = 16, seed: int = 0, pngs: bool = True) -> pathlib.Path:
  """Writes report.html (and the PNG grids) of the finished run in `workdir`; returns its path.

  Args:
    workdir: a run directory holding config.json, metrics.jsonl and scores.npz.
    dataset: the run's `data.Dataset` (rows in the order of scores.npz); loaded again from
      the run's config when None.
    data_dir: overrides the config's data_dir when loading (the run's may be relative to
      another working directory).
    k: examples per grid.
    seed: the permutation that breaks ties (`metrics.difficulty.order`).
    pngs: also write plots/grids/*.png.

  Raises:
    ReportError: not a finished run, or its data cannot be loaded or do not match scores.npz.
  """
  workdir = pathlib.Path(workdir)
  if k <= 0:
    raise ReportError(f"k={k} must be a positive number of examples per grid; pass k >= 1")
  config_path, scores_path = workdir / "config.json", workdir / "scores.npz"
  if not config_path.is_file() or not scores_path.is_file():
    missing = "config.json" if not config_path.is_file() else "scores.npz"
    raise ReportError(f"{workdir} has no {missing}, so it is not a finished regularity_jax run; "
                      "pass the --workdir of a run that has finished (or rerun it to finish)")
  config = json.loads(config_path.read_text())
  try:
    scores = scores_file.load(scores_path, what="report workdir")
  except scores_file.ScoresFileError as e:
    raise ReportError(str(e)) from None
  if dataset is None:
    dataset = _load_dataset(config, data_dir, workdir)
  _check_rows(scores, dataset, workdir)
  records = _read_metrics(workdir)
  plots_dir = workdir / "plots"
  grids = []
  for split in ("train", "test"):
    values = selection.computable(scores.arrays, split)
    grids += selection.score_grids(scores.arrays, split, list(values), k=k, seed=seed,
                                   values=values)
    if split == "train":
      grids += selection.data_map_grids(scores.arrays, k=k, seed=seed)
  examples = {"train": dataset.train.images, "test": dataset.test.images}
  class_names = tuple(dataset.class_names) + tuple(
      f"fake class {c}" for c in range(len(dataset.class_names), dataset.num_classes))
  if pngs:
    _write_pngs(workdir / GRIDS_DIR, grids, examples, class_names, dataset, k, workdir.name)
  shown = {caption: plots_dir / name for name, caption in PLOT_CAPTIONS
           if (plots_dir / name).is_file()}
  html = page.render(title=f"{workdir.name}: {config.get('dataset')} / {config.get('model')}",
                     summary=_summary(config, records, scores, dataset, workdir),
                     scores=scores.arrays, examples=examples, class_names=class_names,
                     grids=grids, plots=shown, config=config, provenance=scores.provenance,
                     pixel_mean=dataset.pixel_mean, pixel_std=dataset.pixel_std, k=k,
                     seed=seed, draw=getattr(dataset, "draw", ""),
                     vocabulary=getattr(dataset, "vocabulary", ()))
  path = workdir / REPORT_NAME
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(html, encoding="utf-8")
  os.replace(tmp, path)
  return path


def _load_dataset(config: dict[str, Any], data_dir: str | None, workdir: pathlib.Path):
  import ml_collections  # pylint: disable=g-import-not-at-top
  from regularity_jax import data  # pylint: disable=g-import-not-at-top
  from regularity_jax.training import setup  # pylint: disable=g-import-not-at-top
  cfg = ml_collections.ConfigDict(config)
  if data_dir is not None:
    cfg.data_dir = data_dir
  try:
    return setup.load_data(cfg)
  except data.DataError as e:
    raise ReportError(f"cannot load the data of {workdir} to draw its examples ({e}); pass "
                      "--data_dir=DIR (experiments.report) or data_dir= pointing at that "
                      "dataset") from None


def _check_rows(scores, dataset, workdir: pathlib.Path) -> None:
  for split, part in (("train", dataset.train), ("test", dataset.test)):
    ids = np.asarray(scores[f"{split}/example_id"])
    if ids.shape != part.ids.shape or not np.array_equal(ids, part.ids):
      raise ReportError(
          f"the {split} examples loaded for {workdir} are not the rows of its scores.npz "
          f"({len(part.ids)} loaded, {len(ids)} scored, or other ids); pass the data_dir the "
          "run used (its config.json has it)")


def _read_metrics(workdir: pathlib.Path) -> list[dict[str, Any]]:
  path = workdir / "metrics.jsonl"
  if not path.is_file():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _summary(config, records, scores, dataset, workdir) -> dict[str, Any]:
  last = records[-1] if records else {}
  out = {"dataset": f"{dataset.name} ({dataset.source})", "model": config.get("model"),
         "epochs": last.get("epoch", "?"), "seeds": scores.provenance.get("seeds"),
         "training examples": len(dataset.train), "test examples": len(dataset.test)}
  corrupted = int(np.sum(dataset.train.corrupted))
  if corrupted:
    out["corrupted"] = (f"{corrupted} ({config.get('corruption', {}).get('kind')}, "
                        f"fraction {config.get('corruption', {}).get('fraction')})")
  for key in ("train_accuracy", "eval_train_accuracy", "test_accuracy"):
    value = next((r[key] for r in reversed(records) if key in r), None)
    if value is not None:
      out[f"final {key.replace('_', ' ')}"] = f"{value:.4f}"
  wall = workdir / "wall_time.json"
  if wall.is_file():
    seconds = json.loads(wall.read_text())["seconds"]
    out["wall time"] = f"{seconds:.0f} s ({seconds / 60:.1f} min)"
  if scores.provenance.get("fake_class"):
    out["note"] = (f"AUM threshold samples: a fake class {scores.provenance['fake_class']}; "
                   "every score describes that model")
  return out


def _write_pngs(directory, grids, examples, class_names, dataset, k, title) -> None:
  directory.mkdir(parents=True, exist_ok=True)
  for split in ("train", "test"):
    names = list(dict.fromkeys(g.score for g in grids
                               if g.split == split and g.score != "data_map"))
    for name in names:
      mine = [g for g in grids if g.split == split and g.score == name]
      rows = sorted({int(r) for g in mine for r in g.rows})
      index_of = {r: j for j, r in enumerate(rows)}
      figures.score_figure(mine, np.asarray(examples[split])[rows], index_of, class_names,
                           directory / f"{split}_{name}.png", k=k,
                           pixel_mean=dataset.pixel_mean, pixel_std=dataset.pixel_std,
                           title=f"{title}: {split} examples by {name}",
                           draw=getattr(dataset, "draw", ""),
                           vocabulary=getattr(dataset, "vocabulary", ()))


__all__ = ["Grid", "ReportError", "figures", "page", "selection", "write"]
