"""Many hosts: one process per host (`jax.distributed`), as on TPU pods and GPU clusters.

  --config.distributed.coordinator_address=10.0.0.1:1234   # process 0's host and a free port
  --config.distributed.num_processes=2 --config.distributed.process_id=0   # (1 on the other)
  --config.distributed.enabled=True        # the fields from the cluster's environment instead
                                           # (TPU pods, SLURM, Open MPI: jax.distributed's
                                           # cluster detection)

Every process runs the same program on the same global mesh (all `jax.devices()`, not only
its local ones) and computes the same epoch plans from the run key: the device input keeps
both splits on every device of every process and gathers each process's columns of a step's
batch on its own devices; the stream input reads, per step, only the columns of the batch
that live on this process's devices and joins them into the global batch with
`jax.make_array_from_process_local_data` (`training.inputs`).

On CPU the collectives across processes are gloo's (`jax_cpu_collectives_implementation`,
the default of jax 0.10 and 0.12): tests/test_multihost.py runs 2 processes of 2 CPU devices
over 127.0.0.1.

Files: process 0 (`is_writer`) checks and claims the run directory and writes every file of
it (config, metrics, scores, plots, wall time, feature files); the others open it without
writing (`runs.RunDirectory(writer=False)`). Checkpoints are written by every process, as
Orbax requires (`runs.checkpoints`). Host values of arrays that span other processes' devices
(sharded statistics, plans) are gathered with `fetch` (a collective: every process calls it,
in the same order, as every process runs the same code).

This module is the only one of the engine that talks to `jax.distributed` and `multihost_utils`
(`runs.checkpoints` broadcasts process 0's choice of checkpoint itself).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np

from regularity_jax.training.errors import ConfigError
from regularity_jax.training.errors import OtherProcessFailed

# Features and inputs a multi-process run supports; the rest are refused (`check_supported`).
SUPPORTED_PRIORITIZATION = ("uniform",)


def check_fields(config) -> None:
  """ConfigError (one line) for inconsistent distributed.* fields; needs no JAX backend."""
  d = config.distributed
  address, num, pid = str(d.coordinator_address), int(d.num_processes), int(d.process_id)
  if not address and (num or pid):
    raise ConfigError(f"distributed.num_processes={num} / process_id={pid} set without "
                      "distributed.coordinator_address; set --config.distributed."
                      "coordinator_address=HOST:PORT (process 0's host)")
  if address and (num < 1 or not 0 <= pid < num):
    raise ConfigError(f"distributed.coordinator_address is set but num_processes={num}, "
                      f"process_id={pid}; set --config.distributed.num_processes=N and "
                      "--config.distributed.process_id in [0, N) (different on every process)")


def wanted(config) -> bool:
  """Whether `config` asks for `jax.distributed` (an address, or `distributed.enabled`)."""
  return bool(config.distributed.coordinator_address) or bool(config.distributed.enabled)


def initialize(config) -> None:
  """`jax.distributed.initialize` from `config.distributed` (once per process; a second run
  in the same process reuses it). Must come before anything touches a JAX device."""
  if not wanted(config) or jax.distributed.is_initialized():
    return
  d = config.distributed
  kwargs = {}
  if d.coordinator_address:
    kwargs = {"coordinator_address": str(d.coordinator_address),
              "num_processes": int(d.num_processes), "process_id": int(d.process_id)}
  try:
    jax.distributed.initialize(**kwargs,
                               initialization_timeout=int(d.initialization_timeout))
  except (RuntimeError, ValueError) as e:
    first = " ".join(str(e).split())[:200]
    raise ConfigError(f"jax.distributed.initialize failed ({first}); check --config."
                      "distributed.* (every process needs the same coordinator_address and "
                      "num_processes) and that it runs before anything else uses JAX") from None
  _no_compilation_cache_on_cpu()


def _no_compilation_cache_on_cpu() -> None:
  """Turns JAX's persistent compilation cache off for a multi-process run on CPU.

  jax 0.12.1 deadlocks there: a program with cross-process collectives that one run compiled
  and wrote to the cache (JAX_COMPILATION_CACHE_DIR), read back by the next run's processes,
  waits forever at its first collective (every process idle in `device_get`; jax 0.10.2
  reads the same entries back and runs; tests/test_multihost.py, issue 29). The CPU programs
  of a run compile in seconds, so the cache is worth nothing there; on GPU and TPU it stays.
  """
  if jax.process_count() < 2 or jax.default_backend() != "cpu":
    return
  if jax.config.jax_enable_compilation_cache and jax.config.jax_compilation_cache_dir:
    from regularity_jax import notices  # pylint: disable=g-import-not-at-top
    notices.warn("JAX's persistent compilation cache is off for this multi-process CPU run "
                 "(jax 0.12.1 deadlocks on programs with cross-process collectives read "
                 "back from it)")
  jax.config.update("jax_enable_compilation_cache", False)


def multiprocess() -> bool:
  return jax.process_count() > 1


def is_writer() -> bool:
  """Whether this process writes the run directory's files (process 0)."""
  return jax.process_index() == 0


def check_supported(config, feature_names) -> None:
  """ConfigError (one line) for what a multi-process run does not support yet."""
  if not multiprocess():
    return
  others = [name for name in feature_names if name not in SUPPORTED_PRIORITIZATION]
  if others or config.prioritization not in SUPPORTED_PRIORITIZATION:
    raise ConfigError(f"{jax.process_count()} processes support the default training only "
                      f"(prioritization=uniform, no features), but this config enables "
                      f"{', '.join(others) or config.prioritization}; run it in one process "
                      "(drop --config.distributed.*) or turn those off")
  if int(config.num_devices) not in (0, jax.device_count()):
    raise ConfigError(f"num_devices={config.num_devices} with {jax.process_count()} processes: "
                      "the mesh spans every process's devices; set --config.num_devices=0")


def fetch(tree: Any) -> Any:
  """`jax.device_get` of a pytree whose arrays may span other processes' devices: those are
  gathered (`multihost_utils.process_allgather`, a collective); others are copied locally."""
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  def one(x):
    if isinstance(x, jax.Array) and not (x.is_fully_addressable or x.is_fully_replicated):
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return jax.device_get(x)

  return jax.tree.map(one, tree)


def put(tree: Any, sharding) -> Any:
  """`jax.device_put(tree, sharding)` (a sharding, or a pytree of them) of host values that
  every process holds alike. Several processes: each process places its own shards
  (`jax.make_array_from_callback`), without device_put's cross-process equality check (a
  collective per array, which NaN-filled statistics would fail: NaN != NaN)."""
  if not multiprocess():
    return jax.device_put(tree, sharding)
  if isinstance(sharding, jax.sharding.Sharding):
    sharding = jax.tree.map(lambda _: sharding, tree)

  def one(x, s):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, s, lambda index: x[index])

  return jax.tree.map(one, tree, sharding)


def local_columns(sharding, shape, axis: int) -> slice:
  """The indices along `axis` of a global array of `shape` placed with `sharding` (sharded
  along `axis` only) that this process's devices hold: one contiguous block."""
  blocks = [index[axis] for index in sharding.addressable_devices_indices_map(shape).values()]
  starts = [b.start or 0 for b in blocks]
  stops = [shape[axis] if b.stop is None else b.stop for b in blocks]
  return slice(min(starts), max(stops))


def assemble(tree, sharding, axis: int, width: int):
  """Global arrays from this process's columns (along `axis`, of a global `width`) of every
  leaf: `jax.make_array_from_process_local_data`, each process feeding its own part."""

  def one(x):
    x = np.asarray(x)
    shape = x.shape[:axis] + (width,) + x.shape[axis + 1:]
    return jax.make_array_from_process_local_data(sharding, x, shape)

  with jax.transfer_guard("allow"):  # the epoch's step loop disallows implicit transfers
    return jax.tree.map(one, tree)


def barrier(name: str) -> None:
  """Every process waits here for the others (no-op in one process)."""
  if multiprocess():
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(name)


def broadcast(value: int) -> int:
  """Process 0's integer, on every process (identity in one process)."""
  if not multiprocess():
    return int(value)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def on_writer(fn: Callable[[], Any]) -> Any:
  """Runs `fn` on process 0 only; the others wait for it and raise `OtherProcessFailed` if it
  raised there (so no process blocks at a later collective). Returns `fn()`'s value on
  process 0, None elsewhere."""
  if not multiprocess():
    return fn()
  result, error = None, None
  if is_writer():
    try:
      result = fn()
    except Exception as e:  # pylint: disable=broad-except  # re-raised below, after telling
      error = e
  if broadcast(0 if error is None else 1):
    if error is not None:
      raise error
    raise OtherProcessFailed("process 0 stopped the run (its error line says why); nothing was "
                       "changed by this process: fix that and rerun every process")
  return result
