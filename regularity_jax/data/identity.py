"""`DataIdentity`: what says two runs saw the same data, whichever door the data came through.

    identity = data_identity(raw)            # from a source's `RawData`, before any subset
    identity.digest                          # equal <=> same sizes, ids, labels, content, transforms
    identity.record()                        # the JSON the provenance keeps ("data_identity")

It is built from the FULL splits a source delivers (before subset, corruption and holdout, which
the provenance records on their own):

  source        where the examples came from ("local:/abs/file.npz", "tfds:mnist",
                "function:/abs/my_data.py:load"); recorded, not compared: the same data through
                another door (an .npz written from a dataset function) is the same data
  sizes         (train, test) examples
  fingerprints  sha256 of each split's (id, label) pairs in row order (`fingerprint`)
  content       sha256 of the raw inputs (as the source stores them: uint8 pixels, float
                values), ids and labels of a fixed sample of `SAMPLE` rows per split, evenly
                spaced over the split: cheap for a lazy source of millions of examples (the
                sample's rows are all that is decoded) and different for a re-encoded copy
  transforms    what the engine does to every input before training: the pixel permutation
                ("permute_pixels:<sha256>") (label corruption, which changes labels only, is in
                the provenance's `corruption`)
  release       for a catalog name, how the data compare with that name's known release
                (`releases`): "exact", "ids and labels match; pixels differ (...)", or
                "unchecked" (nothing known to compare with); "" for other datasets

A leaf: numpy and hashlib only.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np

SAMPLE = 16  # rows per split whose raw content is hashed


def fingerprint(ids: np.ndarray, labels: np.ndarray) -> str:
  """sha256 (hex, 16 characters) of a split's (id, label) pairs in row order (the same as
  `runs.scores_file.fingerprint`)."""
  h = hashlib.sha256()
  h.update(np.asarray(ids, np.int32).tobytes())
  h.update(np.asarray(labels, np.int32).tobytes())
  return h.hexdigest()[:16]


def sample_rows(n: int, size: int = SAMPLE) -> np.ndarray:
  """i64[min(n, size)]: the fixed, evenly spaced rows whose content is hashed."""
  return np.unique(np.linspace(0, n - 1, min(n, size)).round().astype(np.int64))


def content_hash(splits) -> str:
  """sha256 (hex, 16) of the sampled rows' ids, labels and raw inputs of each `RawSplit`.

  Inputs are hashed as the source stores them (uint8 stays uint8, floats as float32), with
  their shape, so another encoding of the same pictures hashes differently.
  """
  h = hashlib.sha256()
  for split in splits:
    rows = sample_rows(len(split))
    # Read last row first: a sample that covers a whole small split is not taken for a full
    # decode by a lazy source (image folders cache those).
    inputs = np.asarray(split.read(rows[::-1]))[::-1]
    if np.issubdtype(inputs.dtype, np.floating):
      inputs = inputs.astype(np.float32)
    h.update(f"{len(split)}|{inputs.dtype.str}|{inputs.shape}|".encode())
    h.update(np.asarray(split.row_ids[rows], np.int64).tobytes())
    h.update(np.asarray(split.labels[rows], np.int64).tobytes())
    h.update(np.ascontiguousarray(inputs).tobytes())
  return h.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class DataIdentity:
  """See the module docstring."""

  source: str
  sizes: tuple[int, int]
  fingerprints: tuple[str, str]
  content: str
  transforms: tuple[str, ...] = ()
  release: str = ""

  @property
  def digest(self) -> str:
    """sha256 (hex, 16) of everything but `source` and `release`: equal for the same data."""
    text = "|".join((str(self.sizes), *self.fingerprints, self.content, *self.transforms))
    return hashlib.sha256(text.encode()).hexdigest()[:16]

  def record(self) -> dict[str, Any]:
    """The provenance's "data_identity" entry."""
    return {"digest": self.digest, "source": self.source, "sizes": list(self.sizes),
            "fingerprints": list(self.fingerprints), "content": self.content,
            "transforms": list(self.transforms), "release": self.release}

  def differences(self, other: dict[str, Any]) -> list[str]:
    """What differs from another run's `record()` (empty when the digests agree).

    A record from ids and labels alone (`from_labels`: content "") is compared on what it
    holds: the sizes and (id, label) pairs of its splits (a split it has no rows of, none)."""
    if other.get("digest") == self.digest:
      return []
    out = []
    sizes, fingerprints = list(other.get("sizes", [])), list(other.get("fingerprints", []))
    mine_sizes, mine_fingerprints = list(self.sizes), list(self.fingerprints)
    labels_only = other.get("content") == LABELS_ONLY
    if labels_only and len(sizes) == 2 and sizes[1] == 0:  # no test rows: train alone
      sizes, fingerprints = sizes[:1], fingerprints[:1]
      mine_sizes, mine_fingerprints = mine_sizes[:1], mine_fingerprints[:1]
    if sizes != mine_sizes:
      out.append(f"split sizes {sizes} vs {mine_sizes}")
    if fingerprints != mine_fingerprints:
      out.append("other (id, label) pairs")
    if other.get("content") != self.content and not labels_only:
      out.append("other inputs at the sampled ids")
    if list(other.get("transforms", [])) != list(self.transforms):
      out.append(f"transforms {other.get('transforms')} vs {list(self.transforms)}")
    return out or ([] if labels_only else ["another digest"])


LABELS_ONLY = ""  # the content of an identity known from ids and labels alone


def from_labels(source: str, *splits: tuple[np.ndarray, np.ndarray]) -> DataIdentity:
  """The `DataIdentity` of (ids, labels) per split (train, test) in row order, without inputs
  (`runs` Recorder: scores from a loop that gave no inputs). Its `content` is LABELS_ONLY:
  `differences` compares it on sizes and (id, label) pairs, and on a split with no rows not
  at all. For data whose full splits are these rows (ids 0..n-1 in order, as an .npz or a
  catalog name loads them) it agrees with the engine's identity of the same data."""
  return DataIdentity(source=source, sizes=tuple(len(i) for i, _ in splits),
                      fingerprints=tuple(fingerprint(i, y) if len(i) else "" for i, y in splits),
                      content=LABELS_ONLY)


def data_identity(raw, transforms: tuple[str, ...] = (), release: str = "") -> DataIdentity:
  """The `DataIdentity` of a source's full splits (`raw.RawData`)."""
  return DataIdentity(
      source=raw.source, sizes=(len(raw.train), len(raw.test)),
      fingerprints=tuple(fingerprint(s.row_ids, s.labels) for s in (raw.train, raw.test)),
      content=content_hash((raw.train, raw.test)), transforms=tuple(transforms),
      release=release)
