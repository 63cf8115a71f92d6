"""A split read on the host, row after row of a fixed plan of positions, with grain.

The engine's epoch plans (`batching.epoch_batches` and the prioritization methods) decide
which positions each step takes; this module only reads them, in that order, never with
grain's own shuffle:

  source = SplitSource(dataset.train)        # random access over the host split, ids kept
  rows = plan_dataset(source, positions)     # grain.MapDataset: element r = the examples at
                                             # positions[..., r, :], one batched read
  for row in rows.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=4)):
    row["image"], row["label"], row["id"]    # f32[..., W, *shape], i32[..., W], i32[..., W]

A source is anything with `__len__` and `read(positions: int[...]) -> {column: [..., *]}`
(`SplitSource` over the arrays every loader of this package returns); a record-file source
(`tfds.data_source`, array_record) fits the same two methods with a decode in `read`.
"""

from __future__ import annotations

import grain
import numpy as np

from regularity_jax.data.types import Split

COLUMNS = ("image", "label", "id")  # what a source streams of each example


class SplitSource:
  """Random access over a host `Split`: example i is {image, label, id} of row i (grain's
  RandomAccessDataSource protocol: `__len__`, `__getitem__`; `read` reads many at once)."""

  def __init__(self, split: Split):
    self._columns = {"image": split.images, "label": split.labels, "id": split.ids}

  def __len__(self) -> int:
    return len(self._columns["id"])

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    return {k: v[index] for k, v in self._columns.items()}

  def read(self, positions: np.ndarray) -> dict[str, np.ndarray]:
    """{image f32[*P, *shape], label i32[*P], id i32[*P]} at `positions` int[*P]."""
    return {k: v[positions] for k, v in self._columns.items()}


def plan_dataset(source, positions: np.ndarray, num_rows: int | None = None,
                 first: int = 0) -> grain.MapDataset:
  """Rows `first`..`num_rows`-1 of a plan as a grain MapDataset over `source`.

  Args:
    source: a `SplitSource` (or any object with `read`).
    positions: int[..., R, W] positions into the source; element r reads positions[..., r, :]
      (leading axes, e.g. the replica axis, are kept: element r is [..., W, ...]).
    num_rows: rows to read (default R).
    first: the first row (a resumed epoch's rows done).

  Returns:
    grain.MapDataset of length `num_rows - first`, in plan order.
  """
  positions = np.asarray(positions)
  num_rows = positions.shape[-2] if num_rows is None else int(num_rows)
  return grain.MapDataset.range(int(first), num_rows).map(
      lambda r: source.read(positions[..., r, :]))
