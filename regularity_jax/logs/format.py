"""The bytes of a log file (docs/logs_format.md is the same description for other writers).

A log directory holds files `rank<RANK>-<SESSION>.rjlog` (RANK: the process's rank, 5 digits;
SESSION: a start time in nanoseconds, 20 digits, and the process id: a later session sorts
after an earlier one of the same rank). Every integer is little-endian. A file is

  file header   MAGIC (8 bytes) | u32 n | n bytes of JSON:
                {"format": 1, "num_examples": {"train": N, "test": M}, "num_classes": C,
                 "rank": r, "session": "..."}
  chunks        CHUNK (8 bytes) | u32 n | u64 p | n bytes of JSON | p bytes | u32 crc32
                where the JSON is {"seed", "split", "stream", "epoch", "generation",
                "arrays": [[name, dtype, shape], ...]} and the p bytes hold those arrays
                one after another in C order, with the dtypes named (numpy `dtype.str`):
                  batch_sizes  u4[b]     the rows of each logged batch, in order
                  ids          i4[R]     R = sum(batch_sizes)
                  labels       u1|u2|i4[R]
                  logits       f2|f4[R, C]
                crc32 (zlib) covers the JSON and the p bytes.

A chunk holds consecutive batches of one (seed, split, stream, epoch) of one writer. A file cut
inside a chunk (a crash mid-write) is read up to its last complete chunk. Among the chunks of
one rank, a (seed, split, stream, epoch) logged again replaces the earlier records: the chunks
that count are those of the latest (session, generation); a writer raises the generation when
it logs a key again after logging another one.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any, Mapping

import numpy as np

MAGIC = b"RJLOG\x001\n"
CHUNK = b"RJCHUNK\n"
FORMAT = 1
SUFFIX = ".rjlog"
SPLITS = ("train", "test")
STREAMS = ("presentation", "evaluation")
ARRAYS = ("batch_sizes", "ids", "labels", "logits")


class LogError(ValueError):
  """A log cannot be written or read as asked (one line: the problem and the fix)."""


def file_name(rank: int, session: str) -> str:
  return f"rank{rank:05d}-{session}{SUFFIX}"


def label_dtype(num_classes: int) -> np.dtype:
  """The smallest unsigned type that holds labels in [0, C)."""
  if num_classes <= 256:
    return np.dtype("<u1")
  if num_classes <= 65536:
    return np.dtype("<u2")
  return np.dtype("<i4")


def file_header(meta: Mapping[str, Any]) -> bytes:
  text = json.dumps(dict(meta), sort_keys=True).encode()
  return MAGIC + struct.pack("<I", len(text)) + text


def chunk_bytes(key: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> bytes:
  """One chunk: `key` ({seed, split, stream, epoch, generation}) and the arrays of ARRAYS."""
  described, payload = [], []
  for name in ARRAYS:
    value = np.ascontiguousarray(arrays[name])
    described.append([name, value.dtype.str, list(value.shape)])
    payload.append(value.tobytes())
  text = json.dumps({**dict(key), "arrays": described}, sort_keys=True).encode()
  body = b"".join(payload)
  crc = zlib.crc32(body, zlib.crc32(text))
  return (CHUNK + struct.pack("<IQ", len(text), len(body)) + text + body
          + struct.pack("<I", crc))


def parse_arrays(described, body: memoryview) -> dict[str, np.ndarray]:
  out, at = {}, 0
  for name, dtype, shape in described:
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    out[name] = np.frombuffer(body, dtype, count, at).reshape(shape)
    at += count * dtype.itemsize
  return out
