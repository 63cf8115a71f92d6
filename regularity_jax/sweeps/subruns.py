"""Sub-runs of a study: training configs derived from the study's `base`, run under
`workdir/runs/<name>`.

A study config holds `base` (a `regularity_jax.training.default_config()` with overrides) and
its own parameters. Each training run the study needs is `base` with a few dotted overrides:

  runs = SubRuns(workdir)
  config = derive_config(study.base, {"dataset": "mnist", "corruption.fraction": 0.2, "seed": 1})
  result = runs.run("mnist_noise20_seed1", config)       # RunResult(workdir, metrics, scores)

A rerun of the study reuses a finished sub-run (same config, last epoch logged, scores.npz
written) without touching it, resumes an unfinished one from its checkpoint, and refuses one
whose directory holds another config (`RunDirectoryError`); nothing is ever deleted.
"""

from __future__ import annotations

import copy
import json
import pathlib
import sys
from typing import Any, Callable, Mapping

import ml_collections
import numpy as np

from regularity_jax import data
from regularity_jax.runs import RunDirectory
from regularity_jax.sweeps import datasets
from regularity_jax.sweeps.errors import StudyError
from regularity_jax.training import RunResult
from regularity_jax.training import train_and_evaluate

# Parents under which an override may add a new field (model kwargs are open-ended).
_OPEN_FIELDS = ("model_kwargs",)


def derive_config(base: ml_collections.ConfigDict,
                  overrides: Mapping[str, Any] | None = None) -> ml_collections.ConfigDict:
  """A deep copy of `base` with `overrides` ({'dotted.key': value}) applied by ml_collections
  (`update_from_flattened_dict`: types checked, unknown fields refused; model_kwargs, whose keys
  are the model's own, stays open).

  Raises StudyError (one line) for a field `base` does not have or a value of the wrong type.
  """
  config = copy.deepcopy(base)
  config.lock()
  for field in _OPEN_FIELDS:
    config[field].unlock()
  values = {k: tuple(v) if isinstance(v, list) else v for k, v in (overrides or {}).items()}
  try:
    config.update_from_flattened_dict(values)
  except (KeyError, AttributeError, TypeError) as e:
    message = str(e.args[0] if e.args else e).split(" Other fields present", 1)[0][:200]
    raise StudyError(f"config override {sorted(values)}: {message}; check the field names and "
                     "types against regularity_jax.training.default_config()") from None
  return config


def data_dir_for(study_config: ml_collections.ConfigDict, dataset: str) -> str:
  """The study's `<dataset>_dir` field ('' = tensorflow-datasets / generated mnist1d).

  A study config may also have `data_dir`, the main job's flag name: when set, it is the
  directory of the study's first dataset (`datasets[0]`) and wins over `<dataset>_dir`.
  """
  data_dir = str(study_config.get("data_dir", "") or "")
  datasets = tuple(study_config.get("datasets", ()) or ())
  if data_dir and datasets and dataset == datasets[0]:
    return data_dir
  return str(study_config.get(f"{dataset}_dir", "") or "")


def load_finished(config: ml_collections.ConfigDict, path: pathlib.Path) -> RunResult | None:
  """The RunResult of a finished run of `config` in `path`, or None if it is not finished.

  Finished: config.json equal to `config` (RunDirectoryError if it differs), a metrics line
  for the last epoch, scores.npz, and influence.npz when the config asks for it.
  """
  if not (path / "config.json").is_file():
    return None
  run = RunDirectory(path, config)  # Raises if the saved config differs; creates nothing new.
  records = run.read_metrics()
  if not records or records[-1]["epoch"] != config.num_epochs or not run.scores_path.is_file():
    return None
  if config.turnover.enabled and config.turnover.influence_targets != "none" and \
      not (path / "influence.npz").is_file():
    return None
  with np.load(run.scores_path) as z:
    scores = {k: z[k] for k in z.files}
  return RunResult(workdir=path, metrics=records, scores=scores)


def read_influence(result: RunResult) -> dict[str, np.ndarray]:
  """The influence.npz of a run with turnover.influence_targets='test'."""
  path = pathlib.Path(result.workdir) / "influence.npz"
  if not path.is_file():
    raise StudyError(f"{path} is missing; the sub-run needs turnover.influence_targets='test'")
  with np.load(path) as z:
    return {k: z[k] for k in z.files}


class SubRuns:
  """Runs (or reuses) the training runs of one study under `workdir/runs/`.

  Attributes:
    root: workdir/runs.
    trained, reused: names of the sub-runs this instance trained (or resumed) and reused.
  """

  def __init__(self, workdir: str | pathlib.Path,
               log: Callable[[str], None] | None = None):
    self.root = pathlib.Path(workdir) / "runs"
    self.trained: list[str] = []
    self.reused: list[str] = []
    self._epoch_seconds: dict[str, float] = {}
    self._log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))

  def wall_time(self, name: str) -> float:
    """Seconds the run `name` took when it was trained, over all its invocations (its
    wall_time.json; runs of older versions: root/wall_times.json). NaN when unknown."""
    own = self.path(name) / "wall_time.json"
    if own.is_file():
      return float(json.loads(own.read_text())["seconds"])
    legacy = self.root / "wall_times.json"
    if legacy.is_file():
      return float(json.loads(legacy.read_text()).get(name, float("nan")))
    return float("nan")

  def path(self, name: str) -> pathlib.Path:
    return self.root / name

  def run(self, name: str, config: ml_collections.ConfigDict) -> RunResult:
    """Trains `config` into root/`name`, or returns the finished run already there."""
    path = self.path(name)
    result = load_finished(config, path)
    if result is not None:
      self.reused.append(name)
      self._epoch_seconds[name] = _epoch_seconds(result)
      self._log(f"[study] reuse {name}")
      return result
    self._log(f"[study] train {name}")
    result = train_and_evaluate(config, path)
    self.trained.append(name)
    self._epoch_seconds[name] = _epoch_seconds(result)
    return result

  def run_on_subset(self, name: str, config: ml_collections.ConfigDict, dataset: data.Dataset,
                    keep_ids: np.ndarray, *, data_name: str | None = None) -> RunResult:
    """Trains `config` on the training examples of `dataset` whose ids are in `keep_ids`.

    The subset is written once as workdir/data/<data_name or name>/<dataset>.npz
    (`datasets.write_subset_npz`; runs sharing a data_name share the file) and the sub-run
    reads it: data_dir points there, train_subset/test_subset are 0 and corruption is off (the
    npz already holds the labels `dataset` had, corrupted or not). Its ids are renumbered.
    """
    directory = self.root.parent.resolve() / "data" / (data_name or name)
    data_dir = datasets.write_subset_npz(dataset, keep_ids, directory)
    config = derive_config(config, {"dataset": dataset.name, "data_dir": str(data_dir),
                                    "train_subset": 0, "test_subset": 0,
                                    "corruption.kind": "none", "corruption.fraction": 0.0})
    return self.run(name, config)

  def summary(self) -> str:
    """How many sub-runs, how many reused, and what they cost when they were trained."""
    names = self.trained + self.reused
    text = (f"{len(names)} training runs under runs/ ({len(self.trained)} trained by this "
            f"invocation, {len(self.reused)} reused from an earlier one); their logged epoch "
            f"times (train + eval, metrics.jsonl) sum to {sum(self._epoch_seconds.values()):.0f} s")
    walls = {n: self.wall_time(n) for n in names}
    known = [n for n in names if np.isfinite(walls[n])]
    if known:
      text += (f"; wall time when trained (compilation, data loading and the influence pass "
               f"included) {sum(walls[n] for n in known):.0f} s for {len(known)} of them")
    return text


def _epoch_seconds(result: RunResult) -> float:
  return float(sum(r.get("train_time_s", 0.0) + r.get("eval_time_s", 0.0)
                   for r in result.metrics))


def final_metric(result: RunResult, key: str) -> float:
  """The last logged value of metrics key `key` (NaN if never logged)."""
  for record in reversed(result.metrics):
    if key in record:
      return float(record[key])
  return float("nan")


def config_json(config: ml_collections.ConfigDict) -> str:
  """A compact JSON of a config, for reports."""
  return json.dumps(config.to_dict(), sort_keys=True, default=str)
