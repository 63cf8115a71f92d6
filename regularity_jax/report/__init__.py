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

import contextlib
import json
import os
import pathlib
import socket
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
  from regularity_jax.runs import directory  # pylint: disable=g-import-not-at-top
  try:
    workdir = directory.expand_path(workdir)
    if data_dir:
      data_dir = os.fspath(directory.expand_path(data_dir, what="--data_dir"))
  except directory.RunDirectoryError as e:
    raise ReportError(str(e)) from None
  if k <= 0:
    raise ReportError(f"k={k} must be a positive number of examples per grid; pass k >= 1")
  config_path, scores_path = workdir / "config.json", workdir / "scores.npz"
  if not config_path.is_file() or not scores_path.is_file():
    missing = "config.json" if not config_path.is_file() else "scores.npz"
    raise ReportError(f"{workdir} has no {missing}, so it is not a finished regularity_jax run; "
                      "pass the --workdir of a run that has finished (or rerun it to finish)")
  config = _read_config(config_path, workdir)
  try:
    scores = scores_file.load(scores_path, what="report workdir")
  except scores_file.ScoresFileError as e:
    raise ReportError(str(e)) from None
  with _report_lock(workdir):
    return _write(workdir, config, scores, dataset, data_dir, k, seed, pngs)


def _write(workdir, config, scores, dataset, data_dir, k, seed, pngs) -> pathlib.Path:
  if dataset is None:
    dataset = _load_dataset(config, data_dir, workdir)
    _check_data(workdir, dataset)
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
  tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
  tmp.write_text(html, encoding="utf-8")
  os.replace(tmp, path)
  return path


LOCK_NAME = "report.lock"


@contextlib.contextmanager
def _report_lock(workdir: pathlib.Path):
  """One report at a time per run directory (`report.lock`: host and pid); a second report
  command is refused in one line while the first is alive; a killed one's lock is stale."""
  from regularity_jax.runs import directory  # pylint: disable=g-import-not-at-top
  lock = workdir / LOCK_NAME
  holder = {"pid": os.getpid(), "host": socket.gethostname()}
  for _ in range(2):
    try:
      fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      live = directory.live_holder(lock)
      if live is not None:
        raise ReportError(
            f"a report of {workdir} is being written by another process (pid {live['pid']} on "
            f"{live['host']}); wait for it to end and rerun (if it is not alive, delete "
            f"{lock})") from None
      try:
        lock.unlink()
      except FileNotFoundError:
        pass
      continue
    with os.fdopen(fd, "w") as f:
      f.write(json.dumps(holder))
    break
  else:
    raise ReportError(f"could not claim {lock}; rerun the command")
  try:
    yield
  finally:
    try:
      lock.unlink()
    except FileNotFoundError:
      pass


def _read_config(path: pathlib.Path, workdir: pathlib.Path) -> dict[str, Any]:
  try:
    config = json.loads(path.read_text())
  except (OSError, ValueError) as e:
    raise ReportError(f"{path} cannot be read ({type(e).__name__}: {str(e)[:100]}); pass the "
                      "--workdir of a regularity_jax run") from None
  if not isinstance(config, dict) or not isinstance(config.get("dataset"), str):
    raise ReportError(f"{path} is not the config of a regularity_jax run (no dataset field), "
                      f"so {workdir} is another tool's directory; pass the --workdir of a "
                      "regularity_jax run")
  return config


def _load_dataset(config: dict[str, Any], data_dir: str | None, workdir: pathlib.Path):
  import ml_collections  # pylint: disable=g-import-not-at-top
  from regularity_jax import data  # pylint: disable=g-import-not-at-top
  from regularity_jax.training import setup  # pylint: disable=g-import-not-at-top
  from regularity_jax.training.errors import ConfigError  # pylint: disable=g-import-not-at-top
  cfg = ml_collections.ConfigDict(config)
  resolved = config.get("resolved_paths") or {}
  if "dataset" in resolved:  # a relative path as typed; the run's cwd is not the report's
    cfg.dataset = resolved["dataset"]
  if data_dir is not None:
    cfg.data_dir = data_dir
  elif "data_dir" in resolved:
    cfg.data_dir = resolved["data_dir"]
  try:
    return setup.load_data(cfg)
  except (AttributeError, KeyError) as e:  # a config.json of another version or tool
    raise ReportError(f"the config.json of {workdir} lacks the field {e} needed to load its "
                      "data; pass the --workdir of a regularity_jax run (or rerun it)") from None
  except ConfigError as e:  # a dataset function that cannot be imported again
    raise ReportError(f"cannot load the data of {workdir}: its dataset "
                      f"{config.get('dataset')!r} cannot be imported again ({e}); restore that "
                      "file, or run the report from where it was found") from None
  except data.DataError as e:
    raise ReportError(f"cannot load the data of {workdir} to draw its examples ({e}); pass "
                      "--data_dir=DIR (experiments.report) or data_dir= pointing at that "
                      "dataset") from None


def _check_data(workdir: pathlib.Path, dataset) -> None:
  """ReportError (one line naming what changed) when the loaded data are not those the run
  recorded (`runs.data_record`: data.json, else its scores.npz provenance)."""
  from regularity_jax.runs import data_record  # pylint: disable=g-import-not-at-top
  recorded = data_record.recorded_for(workdir)
  changes = data_record.differences(recorded, dataset)
  if changes:
    raise ReportError(data_record.message(
        workdir, recorded, dataset, changes,
        "no report was written: pass the --data_dir (or data_dir=) of the data the run used"))


def _check_rows(scores, dataset, workdir: pathlib.Path) -> None:
  for split, part in (("train", dataset.train), ("test", dataset.test)):
    ids = np.asarray(scores[f"{split}/example_id"])
    if ids.shape != part.ids.shape or not np.array_equal(ids, part.ids):
      raise ReportError(
          f"the {split} examples loaded for {workdir} are not the rows of its scores.npz "
          f"({len(part.ids)} loaded, {len(ids)} scored, or other ids); pass the data_dir the "
          "run used (its config.json has it)")


def _read_metrics(workdir: pathlib.Path) -> list[dict[str, Any]]:
  """The records of metrics.jsonl; a line cut by a kill or a full disk (or otherwise
  damaged) is left out with a warning: the report shows the epochs that were recorded."""
  from regularity_jax import notices  # pylint: disable=g-import-not-at-top
  path = workdir / "metrics.jsonl"
  if not path.is_file():
    return []
  records = []
  for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except ValueError:
      record = None
    if not isinstance(record, dict):
      notices.warn(f"{path} line {number} is damaged; the report leaves it out")
      continue
    records.append(record)
  return records


def _wall_seconds(path: pathlib.Path) -> float | None:
  """wall_time.json's total, None when it is missing or unreadable (an empty file)."""
  try:
    seconds = json.loads(path.read_text())["seconds"]
    return float(seconds)
  except (OSError, ValueError, KeyError, TypeError):
    return None


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
  seconds = _wall_seconds(workdir / "wall_time.json")
  if seconds is not None:
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


def show(workdir: str | os.PathLike[str], height: int = 720):
  """The run's report.html, displayable in a notebook (Jupyter, Colab): an IPython HTML object
  holding the page in an iframe (`srcdoc`, so it works where the notebook cannot read the run's
  files by URL, as in Colab). `display(report.show(workdir))`, or make it a cell's last value."""
  import html  # pylint: disable=g-import-not-at-top
  from IPython.display import HTML  # pylint: disable=g-import-not-at-top  # notebooks only
  path = pathlib.Path(workdir) / "report.html"
  if not path.is_file():
    raise ReportError(f"{path} does not exist; write it with report.write({str(workdir)!r})")
  text = html.escape(path.read_text(encoding="utf-8"), quote=True)
  return HTML(f'<iframe srcdoc="{text}" style="width:100%;height:{int(height)}px;'
              f'border:1px solid #ccc"></iframe>')
