r"""Replay throughput of `regularity_jax.score_logs`: rows per second and bytes per row.

  python -m benchmarks.score_logs --rows=2000000 --classes=10 --batch=128
  python -m benchmarks.score_logs --rows=200000 --classes=1000 --float16

Writes a log of `--rows` presentation rows (N=50,000 examples, batches of `--batch`, epochs of
N rows) with `logs.Logger`, then times `logs.read` and `logs.replay.replay` (every kernel) on
it; the first chunk's compilation is timed apart by a warm-up replay of one epoch.
"""

import os
import pathlib
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

_ROWS = flags.DEFINE_integer("rows", 2_000_000, "Rows to log and replay.")
_CLASSES = flags.DEFINE_integer("classes", 10, "C, the width of the logits.")
_BATCH = flags.DEFINE_integer("batch", 128, "Rows per logged batch (one kernel update).")
_N = flags.DEFINE_integer("examples", 50_000, "N, the ids of an epoch.")
_FLOAT16 = flags.DEFINE_bool("float16", False, "Log float16 logits.")


def main(argv):
  del argv
  from regularity_jax.logs import Logger, read  # pylint: disable=g-import-not-at-top
  from regularity_jax.logs import replay  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  n, c, b = _N.value, _CLASSES.value, _BATCH.value
  with tempfile.TemporaryDirectory() as tmp:
    directory = pathlib.Path(tmp) / "logs"
    t0 = time.perf_counter()
    labels = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)).astype(np.float32)  # reused each epoch: logging speed
    with Logger(directory, num_examples=n, num_classes=c, float16=_FLOAT16.value) as logger:
      written, epoch = 0, 0
      while written < _ROWS.value:
        order = rng.permutation(n)
        for start in range(0, n, b):
          ids = order[start:start + b][:_ROWS.value - written]
          if not len(ids):
            break
          logger.log(ids, logits[ids], labels[ids], epoch=epoch)
          written += len(ids)
        epoch += 1
    t_log = time.perf_counter() - t0
    t0 = time.perf_counter()
    logs = read(directory)
    t_read = time.perf_counter() - t0
    first = next(iter(logs.streams))
    warm = replay.Logs(logs.directory, logs.num_examples, logs.num_classes,
                       {first: logs.streams[first][:1]}, logs.files)
    t0 = time.perf_counter()
    replay.replay(warm)
    t_warm = time.perf_counter() - t0
    done = replay.replay(logs)
    size = logs.bytes
  print(f"C={c} batch={b} rows={done.rows} logits={'float16' if _FLOAT16.value else 'float32'}"
        f" cores={os.cpu_count()}: {size / done.rows:.1f} bytes/row; log {t_log:.1f} s, read "
        f"{t_read:.2f} s ({done.rows / t_read:,.0f} rows/s), warm-up (compile + 1 epoch) "
        f"{t_warm:.1f} s, replay {done.seconds:.1f} s = {done.rows / done.seconds:,.0f} rows/s")


if __name__ == "__main__":
  app.run(main)
