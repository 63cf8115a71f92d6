"""`read`: the records of a log directory that count, per (seed, split, stream), by epoch.

Rules (`format` documents the bytes):
  - a file cut inside a chunk is read up to its last complete chunk, with one warning naming
    the file;
  - per rank, a (seed, split, stream, epoch) logged again replaces the earlier records (the
    chunks of its latest session and generation count);
  - the ranks of an epoch are merged step by step: update j holds batch j of every rank (as one
    global batch of a data-parallel step), so an id counts once per step across ranks.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import struct
import zlib
from typing import Any

import numpy as np

from regularity_jax import notices
from regularity_jax.logs import format as fmt
from regularity_jax.logs.format import LogError


@dataclasses.dataclass(frozen=True)
class Epoch:
  """The updates of one epoch of one stream, rows in update order.

  Attributes:
    epoch: the logged epoch.
    sizes: i64[U] rows of each update (a step's global batch, or an evaluation batch).
    ids: i32[R] example ids, R = sum(sizes).
    labels: int[R].
    logits: f16|f32[R, C].
  """
  epoch: int
  sizes: np.ndarray
  ids: np.ndarray
  labels: np.ndarray
  logits: np.ndarray


@dataclasses.dataclass(frozen=True)
class Logs:
  """A read log directory: `streams[(seed, split, stream)]` = its `Epoch`s in epoch order."""
  directory: pathlib.Path
  num_examples: dict[str, int]
  num_classes: int
  streams: dict[tuple[int, str, str], list[Epoch]]
  files: tuple[pathlib.Path, ...]

  @property
  def seeds(self) -> list[int]:
    return sorted({k[0] for k in self.streams})

  @property
  def rows(self) -> int:
    return sum(len(e.ids) for epochs in self.streams.values() for e in epochs)

  @property
  def bytes(self) -> int:
    return sum(f.stat().st_size for f in self.files)


def _read_file(path: pathlib.Path):
  """(header, [(chunk key, arrays)]) of one file; a cut chunk ends it with one warning."""
  data = memoryview(path.read_bytes())
  if len(data) < 12 or bytes(data[:8]) != fmt.MAGIC:
    raise LogError(f"{path} is not a regularity_jax log (no {fmt.MAGIC!r} header); keep only "
                   "log files (*.rjlog) in the log directory")
  (n,) = struct.unpack_from("<I", data, 8)
  try:
    header = json.loads(bytes(data[12:12 + n]))
  except ValueError:
    raise LogError(f"{path} has a damaged file header; remove that file (it holds no "
                   "complete chunk) or log again") from None
  chunks, at = [], 12 + n
  while at < len(data):
    problem = None
    if len(data) - at < 20 or bytes(data[at:at + 8]) != fmt.CHUNK:
      problem = "an incomplete chunk header"
    else:
      n, p = struct.unpack_from("<IQ", data, at + 8)
      end = at + 20 + n + p + 4
      if end > len(data):
        problem = f"a chunk cut after {len(data) - at} of its {end - at} bytes"
      else:
        text = bytes(data[at + 20:at + 20 + n])
        body = data[at + 20 + n:at + 20 + n + p]
        (crc,) = struct.unpack_from("<I", data, end - 4)
        if zlib.crc32(body, zlib.crc32(text)) != crc:
          problem = "a chunk whose checksum does not match"
    if problem:
      notices.warn(f"{path} ends in {problem} at byte {at} (a write cut by a crash); it is "
                   f"read up to its last complete chunk ({len(chunks)} chunks)")
      break
    key = json.loads(text)
    chunks.append((key, fmt.parse_arrays(key["arrays"], body)))
    at = end
  return header, chunks


def read(directory: str | os.PathLike) -> Logs:
  """Reads every log file of `directory`; LogError (one line) when it cannot be used."""
  directory = pathlib.Path(os.path.expanduser(os.fspath(directory)))
  files = sorted(directory.glob(f"*{fmt.SUFFIX}")) if directory.is_dir() else []
  if not files:
    raise LogError(f"no log files (*{fmt.SUFFIX}) in {directory}; pass the directory a "
                   "regularity_jax.logs.Logger wrote")
  meta: dict[str, Any] | None = None
  latest: dict[tuple, tuple] = {}   # (rank, seed, split, stream, epoch) -> (session, gen)
  found: list[tuple] = []
  for path in files:
    header, chunks = _read_file(path)
    mine = {"num_examples": header.get("num_examples"), "num_classes": header.get("num_classes")}
    if header.get("format") != fmt.FORMAT:
      raise LogError(f"{path} has log format {header.get('format')!r}, this version reads "
                     f"{fmt.FORMAT}; log again with this version")
    if meta is None:
      meta, first = mine, path
    elif mine != meta:
      raise LogError(f"{path} declares {mine}, {first} declares {meta}: one log directory "
                     "holds one run's logs; pass each run's logs in its own directory")
    rank, session = int(header["rank"]), str(header["session"])
    for key, arrays in chunks:
      if arrays["logits"].shape[1:] != (meta["num_classes"],):
        raise LogError(f"{path} holds logits of width {arrays['logits'].shape[1:]} where it "
                       f"declares num_classes={meta['num_classes']}; log one width per directory")
      k = (rank, int(key["seed"]), key["split"], key["stream"], int(key["epoch"]))
      version = (session, int(key["generation"]))
      latest[k] = max(latest.get(k, version), version)
      found.append((k, version, arrays))
  streams: dict[tuple, dict[int, list]] = {}
  for k, version, arrays in found:
    if latest[k] == version:
      rank, seed, split, stream, epoch = k
      streams.setdefault((seed, split, stream), {}).setdefault(epoch, []).append((rank, arrays))
  out = {key: [_merge(epoch, parts) for epoch, parts in sorted(by_epoch.items())]
         for key, by_epoch in sorted(streams.items())}
  return Logs(directory=directory, num_examples=dict(meta["num_examples"]),
              num_classes=int(meta["num_classes"]), streams=out, files=tuple(files))


def _merge(epoch: int, parts: list[tuple[int, dict[str, np.ndarray]]]) -> Epoch:
  """One epoch's chunks (each rank's in file order) -> updates: batch j of every rank."""
  ranks = sorted({r for r, _ in parts})
  per_rank = {r: [a for q, a in parts if q == r] for r in ranks}
  ids, labels, logits, step, order = [], [], [], [], []
  for position, r in enumerate(ranks):
    sizes = np.concatenate([a["batch_sizes"] for a in per_rank[r]]).astype(np.int64)
    ids += [a["ids"] for a in per_rank[r]]
    labels += [a["labels"] for a in per_rank[r]]
    logits += [a["logits"] for a in per_rank[r]]
    step.append(np.repeat(np.arange(len(sizes)), sizes))
    order.append(position)
  cat = lambda xs: xs[0] if len(xs) == 1 else np.concatenate(xs)
  ids, labels, logits = cat(ids), cat(labels), cat(logits)
  if len(ranks) == 1:
    sizes = np.concatenate([a["batch_sizes"] for _, a in parts]).astype(np.int64)
    return Epoch(epoch, sizes, ids, labels, logits)
  steps = np.concatenate(step)
  rank_of = np.concatenate([np.full(len(s), p) for s, p in zip(step, order)])
  perm = np.lexsort((rank_of, steps))  # by step, then rank; rows of a batch keep their order
  sizes = np.bincount(steps).astype(np.int64)
  return Epoch(epoch, sizes, ids[perm], labels[perm], logits[perm])
