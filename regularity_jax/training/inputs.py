"""Where a batch comes from: the split on the device (`device`) or a host stream (`stream`).

`--config.input_pipeline` picks one of two implementations of one small interface. The epoch
plans, the train step, the augmentation (in the jitted step, same keys) and the metric kernels
are the same for both: only where the example columns of a batch come from changes, so the
two give the same numbers (integers identical; floats within 1e-6, tests/test_streaming.py).

  device  (default) both splits live on every device as {image, label, id, weight}; each step
          gathers its row of the epoch plan there, each evaluation is one scan per split.
  stream  the examples (image, label, id) stay on the host (`data.streaming`: a grain source
          over the loaded split); on the device are only the engine's own per-example values
          (the loss weights; a method's extras such as rho_loss's irreducible losses) and the
          per-example state. Per epoch the host fetches the plan's positions once; a grain
          pipeline reads row after row of them (`stream.threads` threads) and puts each onto
          the mesh with the sharding of the device path's gather, `stream.prefetch` rows ahead
          (`grain.experimental.device_put`); the step gathers the rest on the device. The
          evaluations stream too, one evaluation batch per call of the same program.

Interface (`DeviceInput`, `StreamInput`):
  device_split(arrays)                   the columns of a host split dict that go on the device
  train_rows(setup, plan, num_rows)      per step, the `rows` argument of the step program
  eval_chunks(setup, name, split)        per call of an evaluation program, its
                                         (split, positions, mask, rows) arguments

Several processes (`training.hosts`): every process computes the same plans; the stream of
each reads only the columns of every row that its own devices hold (`hosts.local_columns`)
and the global batch is joined from the processes' parts with
`jax.make_array_from_process_local_data` (`hosts.assemble`); the device input needs nothing:
each process gathers on its devices from its copy of the splits.

Resume: the stream's position is (epoch, row of the plan), both in the checkpointed
`TrainState` (`epoch`; `step` counts the rows). Checkpoints are taken at epoch ends, so a run
resumes at row 0 of epoch `state.epoch`, whose plan is recomputed from the restored state (a
pure function of the run key, the epoch and the state), and the stream restarts there.

`scan_epoch` (an epoch as one device program over the on-device split) has no host stream to
read from: stream mode refuses it (`validate`).
"""

from __future__ import annotations

import itertools
from typing import Iterator

import grain
import jax
import numpy as np

from regularity_jax.data import batching
from regularity_jax.data import streaming
from regularity_jax.training import hosts
from regularity_jax.training import sharding
from regularity_jax.training.errors import ConfigError
from regularity_jax.training.features.base import choice

PIPELINES = ("device", "stream")


def validate(config) -> None:
  """ConfigError (one line) for an unusable input_pipeline or stream.* field."""
  choice("input_pipeline", config.input_pipeline, PIPELINES)
  for field in ("threads", "prefetch"):
    if int(config.stream[field]) < 1:
      raise ConfigError(f"stream.{field}={config.stream[field]} must be >= 1; e.g. "
                        f"--config.stream.{field}=2")
  if config.input_pipeline == "stream" and config.scan_epoch:
    raise ConfigError("scan_epoch=True runs an epoch as one device program over the on-device "
                      "split, which input_pipeline=stream does not keep; set "
                      "--config.scan_epoch=False or --config.input_pipeline=device")


def make(config, dataset) -> "DeviceInput | StreamInput":
  """The input of `config.input_pipeline` over `dataset` (host arrays)."""
  if config.input_pipeline == "stream":
    return StreamInput(dataset, threads=int(config.stream.threads),
                       prefetch=int(config.stream.prefetch))
  return DeviceInput()


class DeviceInput:
  """Today's path: everything on the device, nothing per step from the host."""
  name = "device"
  # Batches of at most this many rows go to the device per call where a feature transfers
  # host images itself (`selection.irreducible.logits_in_batches`); None: all in one call.
  transfer_batches: int | None = None

  def device_split(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return arrays

  def train_rows(self, setup, plan: dict, num_rows: int, first: int = 0) -> Iterator[None]:
    del setup, plan
    return itertools.repeat(None, num_rows - first)

  def eval_chunks(self, setup, name: str, split: dict) -> Iterator[tuple]:
    positions, mask = setup.eval_rows[name]
    yield split, positions, mask, None


class StreamInput:
  """The host stream (module docstring). Holds the host sources of both splits."""
  name = "stream"
  transfer_batches = 8

  def __init__(self, dataset, *, threads: int = 2, prefetch: int = 2):
    self.sources = {"train": streaming.SplitSource(dataset.train),
                    "test": streaming.SplitSource(dataset.test)}
    self.threads, self.prefetch = threads, prefetch

  def device_split(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v for k, v in arrays.items() if k not in streaming.COLUMNS}

  def _stream(self, rows: grain.MapDataset, placement, axis: int = 0,
              width: int = 0) -> Iterator[dict]:
    """`rows` read by `threads` threads, in order, and put on the devices `prefetch` ahead.
    Several processes: `rows` holds this process's columns of every row (along `axis`, of
    the global `width`), joined into global arrays as they come."""
    ds = rows.to_iter_dataset(grain.ReadOptions(num_threads=self.threads,
                                                prefetch_buffer_size=self.prefetch))
    if hosts.multiprocess():
      return (hosts.assemble(row, placement, axis, width) for row in ds)
    return iter(grain.experimental.device_put(ds, placement, cpu_buffer_size=self.prefetch,
                                              device_buffer_size=self.prefetch))

  def train_rows(self, setup, plan: dict, num_rows: int, first: int = 0) -> Iterator[dict]:
    """{image, label, id} of rows first..num_rows-1 of the plan: [W, ...], or [K, W, ...] with
    replicas, sharded along W as the device gather of `plan["positions"]` is."""
    positions = np.asarray(hosts.fetch(plan["positions"]))  # i32[(K,) S, W]: one fetch
    axis = positions.ndim - 2
    placement = sharding.batch_sharded(setup.mesh, axis=axis)
    width = positions.shape[-1]
    if hosts.multiprocess():  # this process's columns of every row
      row_shape = positions.shape[:-2] + (width,)
      positions = positions[..., hosts.local_columns(placement, row_shape, axis)]
    return self._stream(streaming.plan_dataset(self.sources["train"], positions, num_rows,
                                               first=first), placement, axis, width)

  def eval_chunks(self, setup, name: str, split: dict) -> Iterator[tuple]:
    """One evaluation batch per chunk: ({}, positions i32[1, B], mask bool[1, B], rows
    {image [1, B, ...], label, id}); the evaluation needs nothing of the device split."""
    del split
    source = self.sources[name]
    positions, mask = (np.asarray(a) for a in batching.eval_batches(
        len(source), int(setup.config.eval_batch_size)))
    width = positions.shape[1]
    if hosts.multiprocess():  # this process's columns of every batch
      columns = hosts.local_columns(setup.rows, (1, width), 1)
      positions, mask = positions[:, columns], mask[:, columns]
    chunks = grain.MapDataset.range(len(positions)).map(
        lambda r: {"positions": positions[r:r + 1], "mask": mask[r:r + 1],
                   "rows": source.read(positions[r:r + 1])})
    for chunk in self._stream(chunks, setup.rows, 1, width):
      yield {}, chunk["positions"], chunk["mask"], chunk["rows"]
