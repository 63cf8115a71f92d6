"""The seed axis, in one place: K replicas of a run trained in one program.

Replica k of `num_seeds` is the run with seed `seed + k`: every per-replica pytree (the train
state, an epoch plan, a carry) gets a leading axis of size K and every function of it is
`vmap`ped over that axis, while shared inputs (the dataset on the device, evaluation batches)
are not. With K = 1 nothing changes: no axis, no vmap.

  replicas = Replicas(num_seeds)
  step = replicas.lift(epoch_step, shared=("split",))   # vmap over every other argument
  state = replicas.stack([init(seed + k) for k in range(K)])
  first = replicas.first(state.step)                    # replica 0's value, on the host
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Replicas:
  """How many replicas a run trains (`config.num_seeds`)."""
  count: int = 1

  @property
  def on(self) -> bool:
    return self.count > 1

  def lift(self, fn: Callable, *, shared: Sequence[str] = ()) -> Callable:
    """`fn` vmapped over the leading replica axis of every argument not named in `shared`
    (identity when there is one replica). Outputs are per replica."""
    if not self.on:
      return fn
    names = list(inspect.signature(fn).parameters)
    unknown = set(shared) - set(names)
    if unknown:
      raise ValueError(f"{fn.__name__} has no argument(s) {sorted(unknown)}")
    in_axes = tuple(None if name in shared else 0 for name in names)
    return functools.wraps(fn)(jax.vmap(fn, in_axes=in_axes))

  def stack(self, trees: Sequence[Any]) -> Any:
    """K pytrees -> one pytree with a leading replica axis (the tree itself when K = 1)."""
    if not self.on:
      return trees[0]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)

  def broadcast(self, tree: Any) -> Any:
    """One pytree repeated for every replica (the same value in each)."""
    return self.stack([tree] * self.count)

  def unstack(self, tree: Any) -> list[Any]:
    """The inverse of `stack`: one pytree per replica."""
    if not self.on:
      return [tree]
    return [jax.tree.map(lambda x, k=k: x[k], tree) for k in range(self.count)]

  @staticmethod
  def first(value) -> Any:
    """Replica 0's value of a host-fetched scalar (with or without the replica axis)."""
    return np.ravel(np.asarray(value))[0]

  def per_replica(self, value) -> np.ndarray:
    """A host value reshaped to [K, ...] (K = 1 without the axis)."""
    value = np.asarray(value)
    return value.reshape((self.count,) + value.shape[1:]) if self.on else value[None]
