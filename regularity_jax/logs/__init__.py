"""Per-example logs from any training loop (PyTorch, JAX, anything): NumPy only.

    from regularity_jax.logs import Logger
    with Logger("logs/", num_examples=50_000, num_classes=10) as logger:
      for epoch in range(epochs):
        for ids, x, y in loader:
          logits = model(x)                               # the train-mode forward of the step
          logger.log(ids, logits, y, epoch=epoch)         # before optimizer.step()
          ...
        logger.log(test_ids, test_logits, test_y, epoch=epoch, split="test",
                   stream="evaluation")

then `python -m regularity_jax.score_logs --logs=logs/ --workdir=RUN` replays the logs through
the kernels (`metrics`) and writes a run directory: scores.npz, plots, report.html.

  writer   `Logger`: buffered, chunked, append-only files, one per (rank, session)
  reader   `read`: the records that count (last complete chunk, re-logged epochs replaced,
           ranks merged step by step)
  format   the bytes on disk (docs/logs_format.md says the same, for loops that write them
           without this package)

This package imports NumPy and the standard library only (no JAX): a PyTorch environment can
install regularity_jax for it without its JAX extras being imported.
"""

from regularity_jax.logs.format import LogError
from regularity_jax.logs.reader import Epoch
from regularity_jax.logs.reader import Logs
from regularity_jax.logs.reader import read
from regularity_jax.logs.writer import Logger

__all__ = ["Epoch", "LogError", "Logger", "Logs", "read"]
