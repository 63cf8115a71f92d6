"""`Tracker`: several per-example kernels as one pytree with one `update` and one `summarize`.

Example:
  tracker = Tracker(num_examples=60_000)                 # all kernels
  state = tracker.init()
  state = tracker.update(state, ids, logits, labels, mask)   # inside a jitted step
  table = tracker.summarize(state)                       # {"forgetting_events": i32[N], ...}
  frame = tracker.to_dataframe(table)                    # pandas, the observed example ids

The tracker is a frozen dataclass, hashable, so it can be closed over or passed as a static
argument to `jax.jit`. Its state is a plain dict `{kernel name: kernel state}`.

Ids follow `indexing.select_rows` in every kernel: a row counts when its mask is True, its id
lies in [0, num_examples) and it is the first row of that id in the update; other unmasked
rows are counted in `table["dropped"]` (i32[], the one scalar of the table).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from types import ModuleType
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from regularity_jax.metrics import confidence
from regularity_jax.metrics import cumulative
from regularity_jax.metrics import forgetting
from regularity_jax.metrics import losses
from regularity_jax.metrics import margins

KERNELS: dict[str, ModuleType] = {
    "forgetting": forgetting,
    "cumulative": cumulative,
    "margins": margins,
    "confidence": confidence,
    "losses": losses,
}


@dataclasses.dataclass(frozen=True)
class Tracker:
  """A chosen set of kernels (names from `KERNELS`) over `num_examples` example ids."""
  num_examples: int
  kernels: tuple[str, ...] = tuple(KERNELS)

  def __post_init__(self):
    unknown = [k for k in self.kernels if k not in KERNELS]
    if unknown:
      raise ValueError(f"unknown metric kernel(s) {unknown}; choose from {sorted(KERNELS)}")
    if self.num_examples < 0:
      raise ValueError(f"num_examples must be >= 0, got {self.num_examples}")
    object.__setattr__(self, "kernels", tuple(self.kernels))

  @property
  def summary_keys(self) -> tuple[str, ...]:
    """The per-example keys of `summarize` ([num_examples] arrays), without `dropped`."""
    keys = []
    for name in self.kernels:
      keys += [k for k in KERNELS[name].SUMMARY_KEYS if k not in keys]
    return tuple(keys)

  def init(self) -> dict[str, Any]:
    """The initial state: {kernel name: its state of [num_examples] arrays}, every field its
    own buffer (a jitted step may donate it)."""
    return {name: KERNELS[name].init(self.num_examples) for name in self.kernels}

  def update(self, state: Mapping[str, Any], ids: jnp.ndarray, logits: jnp.ndarray,
             labels: jnp.ndarray, mask: jnp.ndarray | None = None) -> dict[str, Any]:
    """ids: i32[B], logits: f32[B, C], labels: i32[B], mask: bool[B] | None -> new state."""
    return {name: KERNELS[name].update(state[name], ids, logits, labels, mask)
            for name in self.kernels}

  def summarize(self, state: Mapping[str, Any]) -> dict[str, jnp.ndarray]:
    """One flat dict: every per-example key of the kernels as a [num_examples] array (keys
    shared by kernels appear once), and `dropped`, i32[]: unmasked rows the kernels did not
    count (ids out of range, or repeated within an update). Every kernel sees the same rows, so
    their counts agree; the largest is reported."""
    table, dropped = {}, []
    for name in self.kernels:
      for key, value in KERNELS[name].summarize(state[name]).items():
        if key == "dropped":
          dropped.append(value)
        else:
          table.setdefault(key, value)
    table["dropped"] = (functools.reduce(jnp.maximum, dropped) if dropped
                        else jnp.zeros((), jnp.int32))
    return table

  def _host_rows(self, table, example_ids):
    host = {k: np.asarray(jax.device_get(v)) for k, v in table.items()}
    per_example = {k: v for k, v in host.items() if v.ndim >= 1}
    if example_ids is not None:
      ids = np.asarray(example_ids, np.int64)
      bad = (ids < 0) | (ids >= self.num_examples)
      if bad.any():
        raise ValueError(f"example_ids holds {int(bad.sum())} ids outside "
                         f"[0, {self.num_examples}) (first {int(ids[bad][0])}); pass ids the "
                         "tracker was built for")
    elif "observations" in per_example:
      ids = np.flatnonzero(per_example["observations"] > 0)
    else:
      ids = np.arange(self.num_examples)
    return ids, {k: v[ids] for k, v in per_example.items()}

  def to_dataframe(self, table: Mapping[str, Any], example_ids: Sequence[int] | None = None):
    """Summary table -> pandas DataFrame indexed by `example_id`.

    Rows: `example_ids` if given, else the ids observed at least once (the id space of a
    tracker is often larger than the examples a run trains on: a 10k subset of a 60k split,
    or train ids in a table sized for both splits; averaging over all N rows would count the
    never-seen ones). `dropped` is not a column (it is one number: `table["dropped"]`).
    """
    import pandas as pd  # Imported lazily: the kernels themselves need only JAX.
    ids, columns = self._host_rows(table, example_ids)
    frame = pd.DataFrame(columns)
    frame.index = pd.Index(ids, name="example_id")
    return frame

  def save_npz(self, path: str | os.PathLike, table: Mapping[str, Any],
               example_ids: Sequence[int] | None = None, prefix: str = "") -> None:
    """Writes `{prefix}example_id` and `{prefix}<key>` arrays to an .npz file (rows as in
    `to_dataframe`), and `{prefix}dropped`."""
    ids, columns = self._host_rows(table, example_ids)
    arrays = {f"{prefix}example_id": ids.astype(np.int32)}
    arrays.update({f"{prefix}{k}": v for k, v in columns.items()})
    if "dropped" in table:
      arrays[f"{prefix}dropped"] = np.asarray(jax.device_get(table["dropped"]))
    np.savez(path, **arrays)
