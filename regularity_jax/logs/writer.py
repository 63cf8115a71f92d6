"""`Logger`: per-example logits of any training loop, to chunked append-only files.

Which logits to log (docs/any_loop.md):
  stream="presentation"  split "train": the logits of the train-mode forward pass of each
                         step (dropout and batch-norm in training mode), on the batch the step
                         trains on, logged before the optimizer step; one call per step, so
                         that an id counts once per update (forgetting, CBTL, AUM, data maps)
  stream="evaluation"    split "train" or "test": eval-mode logits of a pass over the split
                         (every example once per epoch; batch boundaries do not matter)
"""

from __future__ import annotations

import atexit
import os
import pathlib
import time
from typing import Mapping

import numpy as np

from regularity_jax.logs import format as fmt
from regularity_jax.logs.format import LogError


def to_numpy(value, what: str) -> np.ndarray:
  """A NumPy array from NumPy, JAX, or a PyTorch tensor (detached, moved to the CPU)."""
  if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor, without importing torch
    value = value.detach().cpu()
    if str(getattr(value, "dtype", "")) == "torch.bfloat16":
      value = value.float()
    value = value.numpy()
  try:
    return np.asarray(value)
  except (TypeError, ValueError, RuntimeError) as e:
    raise LogError(f"{what} cannot be read as an array ({type(e).__name__}: "
                   f"{str(e).splitlines()[0][:80]}); pass a NumPy array or a CPU tensor") from None


class Logger:
  """Writes (ids, logits, labels) of a training loop to `directory`.

  Args:
    directory: the log directory (created; other ranks and sessions may write there too).
    num_examples: N, ids lie in [0, N): an int for every split, or {"train": N, "test": M}.
    num_classes: C, the width of the logits.
    rank: this process's rank in a distributed loop (default: $RANK, else 0); each rank and
      each session (Logger) writes its own file.
    float16: store logits as float16 (2 bytes a value instead of 4).
    chunk_rows: rows buffered before a chunk is written (a chunk is also written when the
      (seed, split, stream, epoch) changes, and by `flush` and `close`).
  """

  def __init__(self, directory: str | os.PathLike, *, num_examples: int | Mapping[str, int],
               num_classes: int, rank: int | None = None, float16: bool = False,
               chunk_rows: int = 1 << 16):
    if isinstance(num_examples, Mapping):
      sizes = {str(k): int(v) for k, v in num_examples.items()}
    else:
      sizes = {s: int(num_examples) for s in fmt.SPLITS}
    bad = [s for s in sizes if s not in fmt.SPLITS]
    if bad or any(v <= 0 for v in sizes.values()):
      raise LogError(f"num_examples={num_examples!r} must be a positive int or a dict of "
                     f"positive ints keyed by {fmt.SPLITS}")
    if int(num_classes) < 1:
      raise LogError(f"num_classes={num_classes} must be >= 1 (the width of the logits)")
    self.num_examples, self.num_classes = sizes, int(num_classes)
    self.rank = int(os.environ.get("RANK", 0) if rank is None else rank)
    self.logit_dtype = np.dtype("<f2" if float16 else "<f4")
    self.label_dtype = fmt.label_dtype(self.num_classes)
    self.chunk_rows = int(chunk_rows)
    self.directory = pathlib.Path(os.path.expanduser(os.fspath(directory)))
    self.directory.mkdir(parents=True, exist_ok=True)
    self.session = f"{time.time_ns():020d}-{os.getpid()}"
    self.path = self.directory / fmt.file_name(self.rank, self.session)
    self._file = self.path.open("xb")
    self._file.write(fmt.file_header({
        "format": fmt.FORMAT, "num_examples": sizes, "num_classes": self.num_classes,
        "rank": self.rank, "session": self.session}))
    self._file.flush()
    self._key, self._buffer, self._rows = None, [], 0
    self._generation: dict[tuple, int] = {}
    self._last_key = None
    atexit.register(self.close)

  def log(self, ids, logits, labels, *, epoch: int, seed: int = 0, split: str = "train",
          stream: str = "presentation", mask=None) -> None:
    """Records one batch.

    Args:
      ids: int[B] example ids in [0, N) (rows with mask False may hold anything, e.g. -1).
      logits: float[B, C] (NumPy, JAX, or a PyTorch tensor on any device).
      labels: int[B] the labels the loop trained with, in [0, C).
      epoch: the epoch (any int; replay goes in increasing epoch order).
      seed: the training seed (several seeds combine by each score's rule).
      split: "train" or "test".
      stream: "presentation" (the training steps) or "evaluation" (eval passes).
      mask: bool[B] or None; rows with False (padding) are not recorded.
    """
    if stream not in fmt.STREAMS or split not in fmt.SPLITS:
      raise LogError(f"split={split!r}, stream={stream!r}: split is one of {fmt.SPLITS}, "
                     f"stream one of {fmt.STREAMS}")
    if split == "test" and stream == "presentation":
      raise LogError("split='test' with stream='presentation': the test split is not trained "
                     "on; log its eval-mode logits with stream='evaluation'")
    ids, logits, labels = (to_numpy(ids, "ids"), to_numpy(logits, "logits"),
                           to_numpy(labels, "labels"))
    if logits.ndim != 2 or logits.shape[1] != self.num_classes:
      raise LogError(f"logits of shape {logits.shape} in {self.path}, which holds "
                     f"[batch, {self.num_classes}] logits (num_classes={self.num_classes}); "
                     "log logits of one width per log directory")
    size = logits.shape[0]
    if ids.shape != (size,) or labels.shape != (size,):
      raise LogError(f"ids {ids.shape} and labels {labels.shape} must be [{size}], one per row "
                     f"of logits {logits.shape}")
    if not np.issubdtype(ids.dtype, np.integer) or not np.issubdtype(labels.dtype, np.integer):
      raise LogError(f"ids ({ids.dtype}) and labels ({labels.dtype}) must be integers")
    if mask is not None:
      keep = to_numpy(mask, "mask").astype(bool).reshape(size)
      ids, logits, labels = ids[keep], logits[keep], labels[keep]
    n = self.num_examples[split]
    bad = (ids < 0) | (ids >= n)
    if bad.any():
      raise LogError(f"{int(bad.sum())} {split} ids outside [0, {n}) (first {int(ids[bad][0])}) "
                     f"in a batch for {self.path}; declare num_examples above the largest id, "
                     "or pass mask= False for padding rows")
    bad = (labels < 0) | (labels >= self.num_classes)
    if bad.any():
      raise LogError(f"{int(bad.sum())} labels outside [0, {self.num_classes}) (first "
                     f"{int(labels[bad][0])}); pass the class indices the loop trains with")
    if self.logit_dtype.itemsize == 2 and logits.size:
      top = float(np.max(np.abs(logits)))
      if top > float(np.finfo(np.float16).max):
        raise LogError(f"logits reach {top:.4g}, beyond float16's range (65504), in "
                       f"{self.path}; log float32 (float16=False)")
    key = (int(seed), split, stream, int(epoch))
    if key != self._key:
      self.flush()
      if key != self._last_key and key in self._generation:
        self._generation[key] += 1  # logged again after another key: replaces the earlier
      self._generation.setdefault(key, 0)
      self._key = self._last_key = key
    self._buffer.append((ids.astype("<i4"), labels.astype(self.label_dtype),
                         logits.astype(self.logit_dtype)))
    self._rows += len(ids)
    if self._rows >= self.chunk_rows:
      self.flush()

  def flush(self) -> None:
    """Writes the buffered batches as one chunk (one write call)."""
    if not self._buffer or self._file is None:
      return
    seed, split, stream, epoch = self._key
    arrays = {"batch_sizes": np.array([len(b[0]) for b in self._buffer], "<u4"),
              "ids": np.concatenate([b[0] for b in self._buffer]),
              "labels": np.concatenate([b[1] for b in self._buffer]),
              "logits": np.concatenate([b[2] for b in self._buffer])}
    self._file.write(fmt.chunk_bytes(
        {"seed": seed, "split": split, "stream": stream, "epoch": epoch,
         "generation": self._generation[self._key]}, arrays))
    self._file.flush()
    self._buffer, self._rows = [], 0

  def close(self) -> None:
    if self._file is not None:
      self.flush()
      self._file.close()
      self._file = None
      atexit.unregister(self.close)

  def __enter__(self) -> Logger:
    return self

  def __exit__(self, *exc) -> None:
    self.close()


