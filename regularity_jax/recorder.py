"""`Recorder`: a run directory (scores.npz, metrics.jsonl, plots, report.html) from any loop.

    tracker = metrics.Tracker(num_examples=N)
    state = tracker.init()
    ...                                          # your loop: state = tracker.update(...)
    recorder = Recorder("runs/mine", ids={"train": train_ids, "test": test_ids},
                        labels={"train": y_train, "test": y_test}, class_names=names,
                        examples={"train": x_train, "test": x_test})   # examples: optional
    recorder.write(tracker=tracker, train=state, test=test_state, metrics=records)

It writes through the engine's own code: `runs.RunDirectory` (config.json, metrics.jsonl, the
lock), `runs.scores_file` (columns, seeds combined by each score's rule, provenance),
`runs.plots` and `report.write`. The provenance's DataIdentity is computed from the ids and
labels it receives (`data.identity.from_labels`), or is the dataset's own when `dataset=` is a
`data.Dataset` loaded by `regularity_jax.data.load_dataset`; either way an engine run on the same
data prunes by these scores (`--config.pruning.scores_path=RUN/scores.npz`), and on other data
is refused in one line.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Mapping, Sequence

import numpy as np

SPLITS = ("train", "test")
STREAMS = ("train", "eval_train", "test")  # presentation, evaluation of train, of test


class RecorderError(ValueError):
  """The recorder cannot write what was asked (one line: the problem and the fix)."""


def _one_line(message: str) -> str:
  return " ".join(message.split())


class Recorder:
  """Writes one run directory at `workdir` (refused if it exists and is not empty).

  Args:
    workdir: the new run directory.
    ids: {"train": int[n], "test": int[m]} example ids the scores are kept for (the rows of
      scores.npz, sorted by id); "test" optional.
    labels: the same keys: int[n] labels the loop trained with, aligned with `ids`.
    dataset: instead of ids/labels, a `data.Dataset` (its ids, labels, images, class names and
      DataIdentity are used as they are).
    name: the dataset's name in config.json and the provenance.
    class_names: C names (default "0", "1", ...).
    num_classes: C (default: from class_names, else 1 + the largest label).
    examples: {"train": [n, ...], "test": [m, ...]} inputs aligned with `ids`, drawn in the
      report (images [H, W, C], or [L] / [L, C] lines); without them the report lists ids.
    model: what trained (a name for config.json and the report's title).
    config: more entries for config.json (your hyperparameters).
  """

  def __init__(self, workdir: str | os.PathLike, *, ids: Mapping[str, Any] | None = None,
               labels: Mapping[str, Any] | None = None, dataset=None, name: str = "custom",
               class_names: Sequence[str] | None = None, num_classes: int | None = None,
               examples: Mapping[str, Any] | None = None, model: str = "",
               config: Mapping[str, Any] | None = None):
    from regularity_jax.runs import directory  # pylint: disable=g-import-not-at-top
    try:
      self.workdir = directory.expand_path(workdir)
      directory.check_run_path(self.workdir)
    except directory.RunDirectoryError as e:
      raise RecorderError(str(e)) from None
    self._refuse_existing()
    if dataset is None:
      if ids is None or labels is None:
        raise RecorderError("Recorder needs ids= and labels= ({'train': ..., 'test': ...}) or "
                            "dataset= (a regularity_jax.data.Dataset)")
      dataset = dataset_from_labels(ids, labels, name=name, class_names=class_names,
                                    num_classes=num_classes, examples=examples)
    self.dataset = dataset
    self.model = model or "custom"
    self.extra_config = dict(config or {})

  def _refuse_existing(self) -> None:
    if self.workdir.exists() and (not self.workdir.is_dir() or any(self.workdir.iterdir())):
      raise RecorderError(f"{self.workdir} already exists; nothing was changed: pass a new "
                          "workdir (a run directory is never overwritten)")

  def write(self, *, train, test=None, eval_train=None, tracker=None,
            metrics: Sequence[Mapping[str, Any]] = (), seeds: Sequence[int] | None = None,
            plots: bool = True, report: bool = True, k: int = 16,
            provenance: Mapping[str, Any] | None = None) -> pathlib.Path:
    """Writes the run directory; returns its path.

    Args:
      train: the presentation stream of the training split: a `Tracker.summarize` table
        ({key: [N] array}), or a tracker state when `tracker` is given, or a list of either
        (one per seed).
      test: the evaluation stream of the test split, likewise (optional).
      eval_train: the evaluation stream of the training split, likewise (optional).
      tracker: the `metrics.Tracker` whose states are passed (None: tables are passed).
      metrics: one dict per epoch for metrics.jsonl, each with an int "epoch" (keys the plots
        draw: train_loss, train_accuracy, test_loss, test_accuracy, eval_train_*).
      seeds: the seed of each table (default 0, 1, ...).
      plots, report: write plots/*.png and report.html.
      k: examples per report grid.
      provenance: more entries for the provenance (e.g. where the logs were).
    """
    import ml_collections  # pylint: disable=g-import-not-at-top
    from regularity_jax import report as report_lib  # pylint: disable=g-import-not-at-top
    from regularity_jax.runs import RunDirectory  # pylint: disable=g-import-not-at-top
    from regularity_jax.runs import plots as plots_lib  # pylint: disable=g-import-not-at-top
    from regularity_jax.runs import scores_file  # pylint: disable=g-import-not-at-top
    self._refuse_existing()
    streams = {"train": train, "eval_train": eval_train, "test": test}
    per_seed = {s: _tables(v, tracker, s) for s, v in streams.items()}
    count = len(per_seed["train"])
    for stream, tables in per_seed.items():
      if tables and len(tables) != count:
        raise RecorderError(f"{stream} has {len(tables)} tables, train {count}: pass one "
                            "table (or state) per seed for every stream")
    if count == 0:
      raise RecorderError("train= has no table; pass the presentation stream's tracker state "
                          "(or its summary table)")
    seeds = list(range(count)) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != count:
      raise RecorderError(f"seeds={seeds} names {len(seeds)} seeds for {count} tables")
    records = [dict(r) for r in metrics]
    for r in records:
      if not isinstance(r.get("epoch"), (int, np.integer)):
        raise RecorderError(f"metrics record {r} has no int 'epoch'; give each epoch's record "
                            "its epoch")
    self._check_ids(per_seed)
    per_replica = []
    for j in range(count):
      tables = {s: (per_seed[s][j] if per_seed[s] else {}) for s in STREAMS}
      per_replica.append(scores_file.columns(tables, self.dataset))
    scores = per_replica[0] if count == 1 else scores_file.combine_replicas(per_replica)
    num_epochs = max([int(r["epoch"]) for r in records], default=0)
    config = ml_collections.ConfigDict({
        "dataset": self.dataset.name, "model": self.model, "recorder": True,
        "seed": seeds[0], "num_seeds": count, "num_epochs": num_epochs,
        "train_subset": 0, "test_subset": 0, "subset_seed": 0,
        "corruption": {"kind": "none", "fraction": 0.0, "seed": 0},
        "turnover": {"enabled": False}, "plots": bool(plots), "report": bool(report),
        "report_k": int(k), **self.extra_config})
    prov = scores_file.provenance(config, self.dataset)
    prov.update(seeds=seeds, recorded_by="regularity_jax.Recorder", **dict(provenance or {}))
    run = RunDirectory(self.workdir, config, lock=True)
    try:
      for record in records:
        run.append_metrics(record)
      run.write_scores(scores, prov)
      if plots:
        plots_lib.write_all(records, scores, run.plots_dir)
      if report:
        report_lib.write(run.path, dataset=self.dataset, k=k,
                         pngs=self.dataset.draw != "none")
    finally:
      run.unlock()
    return run.path

  def _check_ids(self, per_seed) -> None:
    for stream, tables in per_seed.items():
      split = "test" if stream == "test" else "train"
      ids = getattr(self.dataset, split).ids
      for table in tables:
        width = min((len(v) for v in table.values() if np.ndim(v) == 1), default=None)
        if width is not None and len(ids) and int(ids.max()) >= width:
          raise RecorderError(
              f"the {stream} table covers ids [0, {width}) but the {split} ids reach "
              f"{int(ids.max())}; build the tracker with num_examples above the largest id")


def _tables(value, tracker, stream: str) -> list[dict[str, np.ndarray]]:
  """One host table per seed from a table, a state, or a list of either."""
  if value is None:
    return []
  values = list(value) if isinstance(value, (list, tuple)) else [value]
  out = []
  for v in values:
    if tracker is not None:
      v = tracker.summarize(v)
    if not isinstance(v, Mapping):
      raise RecorderError(f"{stream}= holds a {type(v).__name__}; pass a Tracker.summarize "
                          "table, or tracker states with tracker=")
    if tracker is None and any(isinstance(x, tuple) for x in v.values()):  # kernel states
      raise RecorderError(f"{stream}= holds a tracker state (keys {sorted(v)[:3]}...); pass "
                          "tracker= as well, or the tables of tracker.summarize")
    out.append({k: np.asarray(x) for k, x in v.items()})
  return out


def dataset_from_labels(ids: Mapping[str, Any], labels: Mapping[str, Any], *,
                        name: str = "custom", class_names: Sequence[str] | None = None,
                        num_classes: int | None = None,
                        examples: Mapping[str, Any] | None = None):
  """A `data.Dataset` of the given ids and labels (rows sorted by id), with the DataIdentity of
  those ids and labels (`data.identity.from_labels`)."""
  from regularity_jax.data import identity  # pylint: disable=g-import-not-at-top
  from regularity_jax.data import types  # pylint: disable=g-import-not-at-top
  unknown = set(ids) - set(SPLITS)
  if unknown or "train" not in ids or set(ids) != set(labels):
    raise RecorderError(f"ids and labels must have the same keys, 'train' and optionally "
                        f"'test' (got {sorted(ids)} and {sorted(labels)})")
  examples = dict(examples or {})
  splits, drawn = {}, bool(examples)
  for split in SPLITS:
    i = np.asarray(ids.get(split, np.zeros(0, np.int32))).reshape(-1).astype(np.int64)
    y = np.asarray(labels.get(split, np.zeros(0, np.int32))).reshape(-1).astype(np.int64)
    if len(i) != len(y):
      raise RecorderError(f"{split}: {len(i)} ids but {len(y)} labels; pass one label per id")
    if len(np.unique(i)) != len(i) or (len(i) and i.min() < 0):
      raise RecorderError(f"{split} ids must be distinct and >= 0 (one row per example)")
    order = np.argsort(i, kind="stable")
    if split in examples:
      x = np.asarray(examples[split], np.float32)
      if len(x) != len(i):
        raise RecorderError(f"examples[{split!r}] has {len(x)} rows for {len(i)} ids")
      x = x[order]
    elif drawn and len(i):
      raise RecorderError(f"examples has no {split!r} entry; give examples for every split "
                          "with ids, or none")
    else:
      x = np.zeros((len(i), 0), np.float32)
    splits[split] = types.Split.clean(x, y[order].astype(np.int32), i[order].astype(np.int32))
  all_labels = np.concatenate([splits[s].labels for s in SPLITS])
  if num_classes is None:
    num_classes = len(class_names) if class_names else int(all_labels.max(initial=0)) + 1
  if len(all_labels) and int(all_labels.max()) >= num_classes or int(all_labels.min(initial=0)) < 0:
    raise RecorderError(f"labels must lie in [0, {num_classes}); pass class_names or "
                        "num_classes for every class")
  names = tuple(class_names) if class_names else tuple(str(c) for c in range(num_classes))
  ident = identity.from_labels(f"recorder:{name}", *(
      (splits[s].ids, splits[s].labels) for s in SPLITS))
  return types.Dataset(name=name, train=splits["train"], test=splits["test"],
                       num_classes=int(num_classes), class_names=names,
                       source=ident.source, identity=ident,
                       draw="" if drawn else "none")
