"""`Tracker`: several per-example kernels as one pytree with one `update` and one `summarize`.

Example:
  tracker = Tracker(num_examples=60_000)                 # all kernels
  state = tracker.init()
  state = tracker.update(state, ids, logits, labels, mask)   # inside a jitted step
  table = tracker.summarize(state)                       # {"forgetting_events": i32[N], ...}
  frame = tracker.to_dataframe(table)                    # pandas, indexed by example_id

The tracker is a frozen dataclass, hashable, so it can be closed over or passed as a static
argument to `jax.jit`. Its state is a plain dict `{kernel name: kernel state}`.
"""

from __future__ import annotations

import dataclasses
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
    keys = []
    for name in self.kernels:
      keys += [k for k in KERNELS[name].SUMMARY_KEYS if k not in keys]
    return tuple(keys)

  def init(self) -> dict[str, Any]:
    return {name: KERNELS[name].init(self.num_examples) for name in self.kernels}

  def update(self, state: Mapping[str, Any], ids: jnp.ndarray, logits: jnp.ndarray,
             labels: jnp.ndarray, mask: jnp.ndarray | None = None) -> dict[str, Any]:
    """ids: i32[B], logits: f32[B, C], labels: i32[B], mask: bool[B] | None -> new state."""
    return {name: KERNELS[name].update(state[name], ids, logits, labels, mask)
            for name in self.kernels}

  def summarize(self, state: Mapping[str, Any]) -> dict[str, jnp.ndarray]:
    """Returns one flat dict of [num_examples] arrays (keys shared by kernels appear once)."""
    table = {}
    for name in self.kernels:
      for key, value in KERNELS[name].summarize(state[name]).items():
        table.setdefault(key, value)
    return table

  def to_dataframe(self, table: Mapping[str, Any], example_ids: Sequence[int] | None = None):
    """Summary table -> pandas DataFrame indexed by `example_id` (rows: `example_ids` or all)."""
    import pandas as pd  # Imported lazily: the kernels themselves need only JAX.
    host = {k: np.asarray(jax.device_get(v)) for k, v in table.items()}
    ids = np.arange(self.num_examples) if example_ids is None else np.asarray(example_ids)
    frame = pd.DataFrame({k: v[ids] for k, v in host.items()})
    frame.index = pd.Index(ids.astype(np.int64), name="example_id")
    return frame

  def save_npz(self, path: str | os.PathLike, table: Mapping[str, Any],
               example_ids: Sequence[int] | None = None, prefix: str = "") -> None:
    """Writes `{prefix}example_id` and `{prefix}<key>` arrays to an .npz file."""
    host = {k: np.asarray(jax.device_get(v)) for k, v in table.items()}
    ids = np.arange(self.num_examples) if example_ids is None else np.asarray(example_ids)
    arrays = {f"{prefix}example_id": ids.astype(np.int32)}
    arrays.update({f"{prefix}{k}": v[ids] for k, v in host.items()})
    np.savez(path, **arrays)
