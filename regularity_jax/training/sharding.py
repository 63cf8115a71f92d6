"""Data parallelism the current JAX way: one mesh with a `data` axis.

The batch is sharded along `data`, the train state and the on-device dataset are replicated,
and `jax.jit` inserts the gradient all-reduce. This is what `pmap` became. With several
processes (`training.hosts`) the mesh spans every process's devices.

The per-example statistics (the tracker states) have a layout of their own, imposed inside
every step (`Replicated` by default, `IdSharded` with `shard_statistics=True`): in both, a
batch's per-example values are gathered to every device (O(B) bytes per step) before the
`.at[ids]` updates, instead of XLA's default partitioning of those updates, which all-reduces
all N rows every step. `shard_statistics=True` shards the statistics along their example-id
axis: `statistics_placement` puts them there at the start and `IdSharded` keeps them there;
the id space is padded up to a multiple of the devices (`padded_examples`) so that every
device holds N/D rows; the padding rows have no example id, so no update ever writes them
(docs/scaling.md measures both layouts).
"""

from __future__ import annotations

import dataclasses

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from regularity_jax.training.errors import ConfigError

DATA_AXIS = "data"


def make_mesh(num_devices: int = 0) -> jax.sharding.Mesh:
  """A 1-D mesh over the first `num_devices` devices (0 means all of them): the local ones in
  one process, every process's (`jax.devices()`) in a multi-process run."""
  devices = jax.devices() if jax.process_count() > 1 else jax.local_devices()
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


def padded_examples(num_examples: int, mesh: jax.sharding.Mesh) -> int:
  """`num_examples` rounded up to a multiple of the mesh's devices."""
  num = mesh.devices.size
  return -(-num_examples // num) * num


def _statistics_spec(shape, num_examples: int, axis: int) -> P:
  if len(shape) > axis and shape[axis] == num_examples:
    return P(*([None] * axis), DATA_AXIS)
  return P()


def statistics_placement(mesh: jax.sharding.Mesh, tree, num_examples: int, axis: int = 0):
  """NamedShardings for a tracker-state pytree: leaves whose dimension `axis` (1 with a
  replica axis in front) has `num_examples` rows are sharded along it, the rest replicated."""
  return jax.tree.map(
      lambda x: NamedSharding(mesh, _statistics_spec(x.shape, num_examples, axis)), tree)


@dataclasses.dataclass(frozen=True)
class IdSharded:
  """The id-axis layout of the statistics inside a jitted step (`shard_statistics`).

  `layout(stats)` constrains a tracker state to rows sharded along the data axis (under
  `replicas.lift`'s vmap the leaves are per replica: axis 0); `layout.rows(values)` gathers a
  batch's per-example values ([B] ids, [B, C] logits, labels, mask) to every device before
  they update the statistics, as `Replicated` does: each device then applies the rows whose
  ids fall in its block (the model's forward and backward pass stay data parallel; only those
  few values cross devices, O(B) bytes per step whatever N).
  """
  mesh: jax.sharding.Mesh
  num_examples: int

  def __call__(self, tree):
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(
        x, NamedSharding(self.mesh, _statistics_spec(x.shape, self.num_examples, 0))), tree)

  def rows(self, tree):
    return Replicated(self.mesh)(tree)


@dataclasses.dataclass(frozen=True)
class Replicated:
  """The default layout: the statistics replicated on every device, and a batch's per-example
  values gathered to every device ([B] ids, [B, C] logits) before they update them, so that
  each device applies the whole batch to its copy. Left to itself, XLA partitions each `.at[ids]`
  update of a batch-sharded batch as a scatter of each device's rows into its copy followed by
  an all-reduce of all N rows: O(N) bytes per step instead of O(B) (docs/scaling.md measures
  both). The same numbers either way: each row receives the same values."""
  mesh: jax.sharding.Mesh

  def __call__(self, tree):
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(
        x, NamedSharding(self.mesh, P())), tree)

  def rows(self, tree):
    return self(tree)


def fixed_order_sum(mesh: jax.sharding.Mesh):
  """`total(tree) -> tree`: every leaf [G, ...] (one partial sum per device, G the device
  count) gathered to every device (an all-gather moves bits, it adds nothing) and summed there
  in index order, ((x0 + x1) + x2) + ...: the same bits on every topology of G devices, where
  an all-reduce adds in an order of its own (XLA:CPU in one process, gloo's ring across
  processes, NCCL's, ICI's). Costs G times the leaf's memory on each device."""
  replicated_ = NamedSharding(mesh, P())

  def one(x):
    x = jax.lax.with_sharding_constraint(x, replicated_)
    total = x[0]
    for k in range(1, x.shape[0]):
      total = total + x[k]
    return total

  return lambda tree: jax.tree.map(one, tree)
