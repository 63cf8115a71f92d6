"""Data parallelism the current JAX way: one mesh with a `data` axis.

The batch is sharded along `data`, the train state and the on-device dataset are replicated,
and `jax.jit` inserts the gradient all-reduce. This is what `pmap` became.
"""

from __future__ import annotations

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from regularity_jax.training.errors import ConfigError

DATA_AXIS = "data"


def make_mesh(num_devices: int = 0) -> jax.sharding.Mesh:
  """A 1-D mesh over the first `num_devices` local devices (0 means all of them)."""
  devices = jax.local_devices()
  if num_devices < 0 or num_devices > len(devices):
    raise ConfigError(f"num_devices={num_devices} but {len(devices)} device(s) are available; "
                      "set --config.num_devices=0 to use all of them")
  devices = devices[:num_devices or len(devices)]
  return jax.make_mesh((len(devices),), (DATA_AXIS,), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: jax.sharding.Mesh, axis: int = 0) -> NamedSharding:
  """Shards dimension `axis` along the data axis (axis=1 for [steps, batch] matrices)."""
  return NamedSharding(mesh, P(*([None] * axis), DATA_AXIS))


def check_batch_size(batch_size: int, mesh: jax.sharding.Mesh, name: str = "batch_size") -> None:
  num = mesh.devices.size
  if batch_size <= 0 or batch_size % num:
    raise ConfigError(f"{name}={batch_size} is not a positive multiple of the {num} devices; "
                      f"set --config.{name} to a multiple of {num} (or --config.num_devices)")
