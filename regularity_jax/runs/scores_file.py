"""scores.npz: the per-example record of a run, where its ids come from, and reading it back.

Schema (every array has one row per example of its split, in the split's order):

  <split>/example_id          i32[n]  ids in the numbering of the full split (see provenance)
  <split>/label               i32[n]  labels the run used (train: corrupted where corrupted)
  train/original_label        i32[n]  labels before corruption; train/corrupted bool[n]
  <split>/<statistic>                 train/<key> presentation stream, train/eval_<key> and
                                      test/<key> evaluation streams (metrics.Tracker keys)
  <split>/forgetting_score    f32[n]  Toneva's ranking score (metrics.difficulty)
  <split>/seed<k>/<statistic>         per seed, when num_seeds > 1
  provenance                  str     JSON, see `provenance`

Scores are only meaningful on the examples they were measured on. Everything that reads
another run's scores (pruning, weighting) goes through `read_aligned`, which refuses, in one
line naming both sides: another dataset, another id numbering (TFDS numbers MNIST in a fixed
permutation of the IDX order), other pixels (a pixel permutation, `config.permute_pixels`, on
one side only or another one on each), other labels at the same ids, or ids without a score (unless
the caller allows partial coverage). Seeds, epochs and subset sizes may differ: the scores of
a 60k run may prune a 10k subset of the same split.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import zipfile
from typing import Any, Mapping

import numpy as np

from regularity_jax import notices
from regularity_jax.metrics import difficulty
from regularity_jax.metrics import seeds

FORMAT = 1
PROVENANCE_KEY = "provenance"


class ScoresFileError(ValueError):
  """A scores.npz cannot be used for what was asked (one line: the problem and the fix)."""


def fingerprint(ids: np.ndarray, labels: np.ndarray) -> str:
  """sha256 (hex, 16 characters) of a split's (id, label) pairs in row order."""
  h = hashlib.sha256()
  h.update(np.asarray(ids, np.int32).tobytes())
  h.update(np.asarray(labels, np.int32).tobytes())
  return h.hexdigest()[:16]


def provenance(config, dataset) -> dict[str, Any]:
  """What a scores.npz records about where its examples and numbers come from.

  Args:
    config: the run's ConfigDict.
    dataset: the `data.Dataset` the run trained on (after subset and corruption).
  """
  from regularity_jax import __version__  # pylint: disable=g-import-not-at-top
  num_seeds = int(config.get("num_seeds", 1))
  splits = {}
  for name, split in (("train", dataset.train), ("test", dataset.test)):
    full = dataset.full_sizes[0 if name == "train" else 1] if dataset.full_sizes else None
    splits[name] = {"full_size": full, "scored": int(len(split)),
                    "fingerprint": fingerprint(split.ids, split.original_labels)}
  return {
      "format": FORMAT,
      "regularity_jax": __version__,
      "dataset": dataset.name,
      "source": dataset.source,
      "numbering": dataset.numbering,
      "splits": splits,
      "subset": {"train_subset": int(config.train_subset), "test_subset": int(config.test_subset),
                 "subset_seed": int(config.subset_seed)},
      "corruption": {k: config.corruption[k] for k in ("kind", "fraction", "seed")},
      "permute_pixels": permutation_of(dataset),
      "seeds": [int(config.seed) + k for k in range(num_seeds)],
      "num_epochs": int(config.num_epochs),
      "model": config.model,
      "turnover": bool(config.turnover.enabled),
      "holdout": ({k: config.holdout[k] for k in ("fraction", "folds", "fold", "seed")}
                  if "holdout" in config else None),
      "fake_class": _fake_class(config, dataset),
      **({"data_identity": identity_of(dataset)} if identity_of(dataset) else {}),
  }


def identity_of(dataset) -> dict[str, Any] | None:
  """The dataset's `data.DataIdentity` record (provenance "data_identity"), or None (a dataset
  built by hand). Files written before it existed have none: they are checked by name,
  numbering, pixels and the (id, label) pairs alone."""
  ident = getattr(dataset, "identity", None)
  return None if ident is None else ident.record()


def permutation_of(dataset) -> dict[str, Any] | None:
  """{"seed", "sha256"} of the dataset's pixel permutation (`data.permutation`), or None.
  A provenance without the key (older files) had none."""
  perm = getattr(dataset, "pixel_permutation", None)
  return None if perm is None else perm.describe()


def _describe_pixels(perm: Mapping[str, Any] | None) -> str:
  if not perm:
    return "unpermuted pixels"
  return f"pixels permuted (seed {perm.get('seed')}, sha256 {str(perm.get('sha256'))[:12]})"


def _fake_class(config, dataset) -> dict[str, int] | None:
  """AUM's threshold samples (`features.aum_threshold`): which set had the fake class."""
  options = config.get("aum_threshold")
  if options is None or not int(options.set):
    return None
  return {"set": int(options.set), "seed": int(options.seed), "class": dataset.num_classes - 1,
          "count": int(np.sum(dataset.train.labels == dataset.num_classes - 1))}


# Columns that describe the examples rather than measure them: equal in every replica.
PER_RUN_KEYS = ("example_id", "label", "original_label", "corrupted", "active",
                "aum_threshold_sample")


def columns(tables: Mapping[str, Mapping[str, np.ndarray]], dataset) -> dict[str, np.ndarray]:
  """The scores.npz columns of one replica from its host summary tables.

  Args:
    tables: {"train": presentation stream, "eval_train": evaluation stream of the training
      split, "test": evaluation stream of the test split}, each a `Tracker.summarize` table
      over the run's id space (fetched to the host).
    dataset: the run's `data.Dataset` (rows in split order).

  Returns:
    `train/<key>`, `train/eval_<key>` and `test/<key>` for every per-example key, the example
    ids and labels, and `<split>/forgetting_score` (Toneva's ranking score, `metrics.difficulty`).
  """
  ids = {"train": dataset.train.ids, "test": dataset.test.ids}
  out = {
      "train/example_id": dataset.train.ids, "train/label": dataset.train.labels,
      "train/original_label": dataset.train.original_labels,
      "train/corrupted": dataset.train.corrupted,
      "test/example_id": dataset.test.ids, "test/label": dataset.test.labels,
  }
  for stream, prefix, split in (("train", "train/", "train"), ("eval_train", "train/eval_", "train"),
                                ("test", "test/", "test")):
    table = {k: np.asarray(v) for k, v in tables[stream].items() if np.ndim(v) == 1}
    for key, value in table.items():
      out[f"{prefix}{key}"] = value[ids[split]]
    if stream != "eval_train" and "forgetting_events" in table:
      rows = {k: v[ids[split]] for k, v in table.items()}
      out[f"{prefix}forgetting_score"] = np.asarray(difficulty.score(
          "forgetting" if split == "train" else "malgeneralizing", rows))
  return out


def combine_replicas(per_replica: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """Seed-combined `<split>/<key>` (`metrics.seeds.combine`) plus per-seed
  `<split>/seed<k>/<key>`; `train/flipped_prob` keeps the seed axis ([K, N, C]) for
  `estimators.bias_variance`, and `holdout/prob` likewise ([K, n, C])."""
  out = {}
  for split in ("train", "test"):
    keys = [k for k in per_replica[0] if k.startswith(f"{split}/")]
    stat_keys = [k for k in keys if k.split("/", 1)[1] not in PER_RUN_KEYS
                 and k != "train/flipped_prob"]
    for key in keys:
      if key not in stat_keys:
        out[key] = per_replica[0][key]
    stacked = {k.split("/", 1)[1]: np.stack([s[k] for s in per_replica]) for k in stat_keys}
    for name, value in seeds.combine(stacked).items():
      out[f"{split}/{name}"] = value
    for k, table in enumerate(per_replica):
      for key in stat_keys:
        out[f"{split}/seed{k}/{key.split('/', 1)[1]}"] = table[key]
  if "train/flipped_prob" in per_replica[0]:
    out["train/flipped_prob"] = np.stack([s["train/flipped_prob"] for s in per_replica])
  for key in (k for k in per_replica[0] if k.startswith("holdout/")):  # features.holdout
    out[key] = (np.stack([s[key] for s in per_replica]) if key == "holdout/prob"
                else per_replica[0][key])
  for key in (k for k in per_replica[0] if k.startswith("aum_threshold/")):  # one per seed
    out[key] = np.stack([s[key] for s in per_replica])
  return out


def write(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
          prov: Mapping[str, Any]) -> None:
  """Writes `arrays` and the provenance JSON to `path` atomically (tmp file, then rename).

  The file is the one `np.savez` writes, but for its zip entries' dates (fixed at 1980-01-01
  instead of the time of writing): the same arrays give the same bytes, so a finished run's
  scores.npz written again from its final checkpoint equals the original byte for byte."""
  path = pathlib.Path(path)
  out = {k: np.asarray(v) for k, v in arrays.items() if k != PROVENANCE_KEY}
  out[PROVENANCE_KEY] = np.asarray(json.dumps(dict(prov), sort_keys=True))
  tmp = path.with_name(path.name + ".tmp")
  with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
    for key, value in out.items():
      info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
      with archive.open(info, "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)
  os.replace(tmp, path)


class Scores:
  """A loaded scores.npz: `arrays` (every column, in memory) and `provenance` (a dict)."""

  def __init__(self, path: pathlib.Path, arrays: dict[str, np.ndarray],
               prov: dict[str, Any]):
    self.path, self.arrays, self.provenance = path, arrays, prov

  def __getitem__(self, key: str) -> np.ndarray:
    return self.arrays[key]

  def __contains__(self, key: str) -> bool:
    return key in self.arrays

  def keys(self):
    return self.arrays.keys()


def load(path: str | os.PathLike, *, what: str = "scores_path") -> Scores:
  """Reads a scores.npz written by a run; ScoresFileError (one line) if it cannot be used.

  Args:
    path: the file.
    what: the config field that named it, for the messages.
  """
  path = pathlib.Path(path)
  fix = f"pass --config.{what}=RUN/scores.npz of a finished run"
  if not path.is_file():
    raise ScoresFileError(f"{what} {path} does not exist; {fix}")
  try:
    with np.load(path, allow_pickle=False) as z:
      arrays = {k: z[k] for k in z.files}
  except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
    cause = str(e).split("\n", 1)[0][:120]
    raise ScoresFileError(f"{what} {path} is not a readable .npz ({type(e).__name__}: {cause}); "
                          f"it may be truncated or another kind of file: {fix}") from None
  if PROVENANCE_KEY not in arrays:
    raise ScoresFileError(
        f"{what} {path} has no provenance (written before regularity_jax recorded where its ids "
        "come from), so it cannot be checked against this dataset; rerun the scoring run with "
        "this version and pass its scores.npz")
  try:
    prov = json.loads(str(arrays.pop(PROVENANCE_KEY)))
  except ValueError:
    raise ScoresFileError(f"{what} {path} has an unreadable provenance entry; {fix}") from None
  if not isinstance(prov, dict):
    raise ScoresFileError(f"{what} {path} has an unreadable provenance entry; {fix}")
  if prov.get("format") != FORMAT:
    raise ScoresFileError(f"{what} {path} has provenance format {prov.get('format')!r}, this "
                          f"version reads {FORMAT}; rerun the scoring run with this version")
  for key in ("train/example_id", "train/label"):
    if key not in arrays:
      raise ScoresFileError(f"{what} {path} lacks the column {key!r}; is it a regularity_jax "
                            f"scores.npz? {fix}")
  register_statistics(prov)
  return Scores(path, arrays, prov)


def register_statistics(prov: Mapping[str, Any]) -> None:
  """Registers the scores of the user statistics a provenance declares ("statistics"), so
  pruning, weighting and the report know them by name without importing their code."""
  from regularity_jax.metrics import statistics  # pylint: disable=g-import-not-at-top
  for name, declared in (prov.get("statistics") or {}).items():
    if name not in difficulty.SCORES or difficulty.SCORES[name].source == declared.get("spec"):
      try:
        statistics.register_declared(name, declared)
      except (KeyError, TypeError, ValueError):
        pass  # a malformed entry: its score stays unknown (named as such where asked for)


def _side(dataset) -> str:
  return f"{dataset.name} from {dataset.source}"


def check_matches(scores: Scores, dataset, *, what: str = "scores_path") -> None:
  """Refuses scores of another dataset, id numbering or labels (see the module docstring).

  Args:
    scores: a loaded scores file.
    dataset: the `data.Dataset` this run trains on.
    what: the config field that named the file.
  """
  prov, path = scores.provenance, scores.path
  theirs = f"{prov.get('dataset')!r} from {prov.get('source')}"
  their_identity, my_identity = prov.get("data_identity"), getattr(dataset, "identity", None)
  same = None  # unknown: a file (or a dataset) without a DataIdentity, or one at odds with
  # its own provenance's source: checked by name, numbering, pixels and labels alone
  if (isinstance(their_identity, dict) and my_identity is not None
      and their_identity.get("source") == prov.get("source")):
    # The pixel permutation has its own check (below), with its own message.
    differs = [d for d in my_identity.differences(their_identity)
               if not d.startswith("transforms")]
    same = not differs
  if same is False and prov.get("dataset") == dataset.name:
    raise ScoresFileError(
        f"{what} {path} scores {theirs} (data identity {their_identity.get('digest')}), but this "
        f"run trains {_side(dataset)} (data identity {my_identity.digest}): "
        f"{'; '.join(differs)}; pass the scores.npz of a run on these data")
  if same:
    pass  # the same data, whichever door and name they came through
  elif prov.get("dataset") != dataset.name:
    raise ScoresFileError(f"{what} {path} scores dataset {theirs}, but this run trains "
                          f"{_side(dataset)}; pass the scores.npz of a {dataset.name} run")
  if not same and prov.get("numbering") != dataset.numbering:
    raise ScoresFileError(
        f"{what} {path} numbers its examples by {prov.get('numbering')} ({theirs}), this run by "
        f"{dataset.numbering} ({_side(dataset)}): the same id is another example there; score "
        "the data loaded the same way (both TFDS, or both from local files)")
  theirs_perm, mine_perm = prov.get("permute_pixels"), permutation_of(dataset)
  if (theirs_perm or {}).get("sha256") != (mine_perm or {}).get("sha256"):
    raise ScoresFileError(
        f"{what} {path} scores {theirs} with {_describe_pixels(theirs_perm)}, but this run "
        f"trains {_side(dataset)} with {_describe_pixels(mine_perm)}: other images at the same "
        "ids; pass the scores of a run with the same --config.permute_pixels")
  full = (prov.get("splits") or {}).get("train", {}).get("full_size")
  if dataset.full_sizes and full is not None and full != dataset.full_sizes[0]:
    raise ScoresFileError(
        f"{what} {path} was measured on a training split of {full} examples ({theirs}), this "
        f"run's has {dataset.full_sizes[0]} ({_side(dataset)}); pass scores of the same data")
  ids = np.asarray(scores["train/example_id"], np.int64)
  stored = np.asarray(scores["train/original_label"] if "train/original_label" in scores
                      else scores["train/label"], np.int64)
  mine = dict(zip(dataset.train.ids.tolist(), dataset.train.original_labels.tolist()))
  common = np.array([i in mine for i in ids.tolist()], bool)
  if common.any():
    want = np.array([mine[i] for i in ids[common].tolist()], np.int64)
    differ = stored[common] != want
    if differ.any():
      first = int(ids[common][differ][0])
      raise ScoresFileError(
          f"{what} {path}: {int(differ.sum())} of {int(common.sum())} shared ids have other "
          f"labels there ({theirs}) than in {_side(dataset)} (first: id {first}); these are "
          "not the same examples: pass scores of this data")


def read_aligned(path: str | os.PathLike, name: str, dataset, *, what: str = "scores_path",
                 allow_partial: bool = False) -> np.ndarray:
  """Score `name` of a previous run, aligned to `dataset.train` by example id.

  Args:
    path: the scores.npz.
    name: a training-split score of `metrics.difficulty`.
    dataset: this run's dataset.
    what: the config field that named the file (messages).
    allow_partial: when False, a training example of this run that the file does not score
      (its id is absent, or its score is NaN because it was never observed there) is refused;
      when True such examples get NaN, which pruning ranks after every scored example (kept
      only once all of those are) and weighting gives the middle rank 0.5.

  Returns:
    f32[len(dataset.train)], higher = harder, NaN = unscored.
  """
  scores = load(path, what=what)
  check_matches(scores, dataset, what=what)
  if scores.provenance.get("fake_class"):
    notices.warn(f"{what} {scores.path} comes from a run with AUM threshold samples (a fake "
                 f"class: {scores.provenance['fake_class']}); their scores describe that model")
  try:
    values = difficulty.from_scores(name, scores.arrays)
  except ValueError as e:
    raise ScoresFileError(f"{what} {scores.path}: {e}") from None
  position = {int(i): p for p, i in enumerate(scores["train/example_id"].tolist())}
  rows = np.array([position.get(int(i), -1) for i in dataset.train.ids.tolist()], np.int64)
  aligned = np.where(rows >= 0, values[np.maximum(rows, 0)], np.nan).astype(np.float32)
  if not allow_partial:
    absent, unscored = int((rows < 0).sum()), int(np.isnan(aligned[rows >= 0]).sum())
    if absent or unscored:
      field = what.rsplit(".", 1)[0] + ".allow_partial" if "." in what else "allow_partial"
      raise ScoresFileError(
          f"{what} {scores.path} scores {len(aligned) - absent - unscored} of this run's "
          f"{len(aligned)} training examples ({absent} ids absent, {unscored} never observed "
          f"there); pass scores of a run that saw them all, or set --config.{field}=True "
          "(unscored examples then rank after every scored one)")
  return aligned
