"""data.json: which data a run directory was trained on, and what changed since.

  record = describe(dataset)                      # at the first claim of a run directory
  changes = differences(recorded_for(workdir), dataset)   # on resume, rerun, report command

`data.json` holds the dataset's `data.DataIdentity` record (full splits: sizes, (id, label)
fingerprints, a content hash of sampled inputs, transforms) and what the run trained on after
subset, corruption and holdout: each split's ids and labels (sha256 of each, so that the message
can say which changed), the example shape, the class count and names. Run directories made
before data.json existed are never refused for lacking it: a finished one is checked against
its scores.npz provenance (its `data_identity` and splits' fingerprints), and data.json is
written from then on.

A leaf beside `directory`: numpy, hashlib and json only.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Any

import numpy as np

NAME = "data.json"


def _hash(values) -> str:
  return hashlib.sha256(np.ascontiguousarray(np.asarray(values, np.int64)).tobytes()
                        ).hexdigest()[:16]


def _fingerprint(ids, labels) -> str:
  from regularity_jax.runs import scores_file  # pylint: disable=g-import-not-at-top
  return scores_file.fingerprint(ids, labels)


def describe(dataset) -> dict[str, Any]:
  """The data.json record of a loaded `data.Dataset`."""
  identity = getattr(dataset, "identity", None)
  splits = {}
  for name, split in (("train", dataset.train), ("test", dataset.test)):
    labels = getattr(split, "original_labels", split.labels)
    splits[name] = {"size": int(len(split)), "ids": _hash(split.ids), "labels": _hash(labels),
                    "fingerprint": _fingerprint(split.ids, labels)}
  return {"name": dataset.name, "source": dataset.source,
          "data_identity": None if identity is None else identity.record(),
          "splits": splits, "example_shape": [int(d) for d in dataset.example_shape],
          "num_classes": int(dataset.num_classes),
          "class_names": [str(c) for c in dataset.class_names]}


def read(workdir: str | os.PathLike) -> dict[str, Any] | None:
  """The run's data.json record, None when it has none (or it cannot be read)."""
  path = pathlib.Path(workdir) / NAME
  try:
    record = json.loads(path.read_text())
  except (OSError, ValueError):
    return None
  return record if isinstance(record, dict) else None


def write(workdir: str | os.PathLike, record: dict[str, Any]) -> None:
  path = pathlib.Path(workdir) / NAME
  tmp = path.with_name(NAME + ".tmp")
  tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
  os.replace(tmp, path)


def from_provenance(provenance: dict[str, Any]) -> dict[str, Any]:
  """What a scores.npz provenance says of the data (a run without data.json)."""
  splits = {name: {"size": s.get("scored"), "fingerprint": s.get("fingerprint")}
            for name, s in (provenance.get("splits") or {}).items() if isinstance(s, dict)}
  return {"source": provenance.get("source"), "data_identity": provenance.get("data_identity"),
          "splits": splits}


def recorded_for(workdir: str | os.PathLike) -> dict[str, Any] | None:
  """data.json, else what the run's scores.npz provenance says, else None (nothing recorded:
  a run made before either; never refused for that)."""
  record = read(workdir)
  if record is not None:
    return record
  scores = pathlib.Path(workdir) / "scores.npz"
  if not scores.is_file():
    return None
  try:
    with np.load(scores, allow_pickle=False) as f:
      provenance = json.loads(str(f["provenance"]))
  except Exception:  # pylint: disable=broad-except  # a damaged file: nothing to compare with
    return None
  return from_provenance(provenance) if isinstance(provenance, dict) else None


def differences(recorded: dict[str, Any] | None, dataset) -> list[str]:
  """What differs between a run's recorded data and `dataset` (empty: the same, or nothing
  recorded to compare with), each a few words: sizes, ids, labels, inputs, shape, classes."""
  if not recorded:
    return []
  now = describe(dataset)
  out = []
  for name in ("train", "test"):
    old, new = (recorded.get("splits") or {}).get(name), now["splits"][name]
    if not isinstance(old, dict):
      continue
    if old.get("size") is not None and old["size"] != new["size"]:
      out.append(f"{name} examples {old['size']} -> {new['size']}")
    elif old.get("ids") and old["ids"] != new["ids"]:
      out.append(f"other {name} ids")
    elif old.get("labels") and old["labels"] != new["labels"]:
      out.append(f"other {name} labels")
    elif old.get("fingerprint") and old["fingerprint"] != new["fingerprint"]:
      out.append(f"other {name} (id, label) pairs")
  if recorded.get("example_shape") is not None and (
      list(recorded["example_shape"]) != now["example_shape"]):
    out.append(f"example shape {tuple(recorded['example_shape'])} -> "
               f"{tuple(now['example_shape'])}")
  if recorded.get("num_classes") is not None and recorded["num_classes"] != now["num_classes"]:
    out.append(f"classes {recorded['num_classes']} -> {now['num_classes']}")
  elif recorded.get("class_names") is not None and (
      list(recorded["class_names"]) != now["class_names"]):
    changed = [f"{a!r} -> {b!r}" for a, b in zip(recorded["class_names"], now["class_names"])
               if a != b]
    out.append(f"class names {', '.join(changed[:2])}")
  old_id, new_id = recorded.get("data_identity"), now["data_identity"]
  if isinstance(old_id, dict) and isinstance(new_id, dict) and old_id.get("digest") != new_id[
      "digest"]:
    if old_id.get("content") != new_id.get("content") and not any(
        "shape" in d or "examples" in d for d in out):
      out.append("other inputs (pixels) at the sampled examples")
    if list(old_id.get("transforms", [])) != list(new_id.get("transforms", [])):
      out.append(f"transforms {old_id.get('transforms')} -> {new_id.get('transforms')}")
    if list(old_id.get("sizes", [])) != list(new_id.get("sizes", [])) and not out:
      out.append(f"full split sizes {old_id.get('sizes')} -> {new_id.get('sizes')}")
    if not out:
      out.append(f"data identity {old_id.get('digest')} -> {new_id['digest']}")
  return out


def message(workdir, recorded: dict[str, Any], dataset, changes: list[str], fix: str) -> str:
  """The one line naming what changed."""
  was = recorded.get("source") or recorded.get("name") or "its data"
  return (f"the data of {workdir} changed since it was trained on {was}: "
          f"{'; '.join(changes[:4])} (now {dataset.source}); {fix}")
