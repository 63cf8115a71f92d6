r"""Scores and the report from logs of any training loop (`regularity_jax.logs.Logger`).

  python -m regularity_jax.score_logs --logs=logs/ --workdir=runs/mine
  python -m regularity_jax.score_logs --logs=logs/ --workdir=runs/mine \
      --class_names=zero,one,two --examples=data.npz --statistics=my_pkg.stats:entropy

reads the logs (`logs.read`: cut chunks, re-logged epochs, ranks), replays them through the
kernels keeping the logged batch boundaries (`logs.replay`), and writes a new run directory
through the `Recorder`: scores.npz (every score, seeds combined by each score's rule, the
DataIdentity of the logged ids and labels), metrics.jsonl (loss and accuracy per epoch of each
stream), plots and report.html. An engine run on the same data prunes by its scores.

--examples: an .npz with x_train (and x_test) whose row i is example id i, drawn in the report.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Sequence

import argparse

def score_logs(logs: str, workdir: str, *, name: str = "custom", model: str = "logged",
               class_names: Sequence[str] | None = None, examples: str | None = None,
               kernels: Sequence[str] | None = None, statistics: Sequence[str] = (),
               k: int = 16, report: bool = True) -> pathlib.Path:
  """The command's work (see the module docstring); returns the run directory."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from regularity_jax import logs as logs_lib  # pylint: disable=g-import-not-at-top
  from regularity_jax.logs import replay as replay_lib  # pylint: disable=g-import-not-at-top
  from regularity_jax.metrics import tracker  # pylint: disable=g-import-not-at-top
  from regularity_jax.recorder import Recorder  # pylint: disable=g-import-not-at-top
  from regularity_jax.recorder import RecorderError  # pylint: disable=g-import-not-at-top
  Recorder(workdir, ids={"train": []}, labels={"train": []})  # refuses an existing workdir now
  read = logs_lib.read(logs)
  if class_names and len(class_names) != read.num_classes:
    raise RecorderError(f"--class_names has {len(class_names)} names, the logs "
                        f"{read.num_classes} classes; pass one name per class")
  done = replay_lib.replay(read, kernels=tuple(kernels or tracker.KERNELS),
                           statistics=tuple(statistics))
  if "train" not in done.ids:
    raise logs_lib.LogError(f"{read.directory} holds no training split (split='train'); log "
                            "the training steps (stream='presentation')")
  drawn = None
  if examples and not pathlib.Path(examples).expanduser().is_file():
    raise RecorderError(f"--examples={examples} is not a file; pass an .npz with x_train (and "
                        "x_test), row i = example id i, or leave --examples out")
  if examples:
    with np.load(pathlib.Path(examples).expanduser()) as z:
      drawn = {}
      for split in done.ids:
        if f"x_{split}" not in z:
          raise RecorderError(f"--examples={examples} has no x_{split}; store the inputs of "
                              f"each logged split as x_<split> (row i = id i)")
        x = z[f"x_{split}"]
        if len(x) <= int(done.ids[split].max()):
          raise RecorderError(f"--examples={examples}: x_{split} has {len(x)} rows, the logs "
                              f"reach id {int(done.ids[split].max())}; row i must be id i")
        drawn[split] = x[done.ids[split]]
  recorder = Recorder(workdir, ids=done.ids, labels=done.labels, name=name,
                      class_names=class_names, num_classes=read.num_classes, examples=drawn,
                      model=model)
  rate = done.rows / max(done.seconds, 1e-9)
  return recorder.write(
      train=done.tables["train"], eval_train=done.tables["eval_train"] or None,
      test=done.tables["test"] or None, metrics=done.records, seeds=done.seeds,
      plots=report, report=report, k=k,
      provenance={"logs": {"directory": str(read.directory.resolve()),
                           "files": len(read.files), "rows": done.rows,
                           "bytes": read.bytes, "replay_rows_per_s": round(rate)}})


def parser() -> argparse.ArgumentParser:
  """The command's flags (argparse: importing this module defines no global absl flags)."""
  p = argparse.ArgumentParser(prog="python -m regularity_jax.score_logs",
                              description=__doc__.split("\n\n", 1)[0])
  p.add_argument("--logs", required=True, help="The log directory (regularity_jax.logs.Logger).")
  p.add_argument("--workdir", required=True, help="The new run directory.")
  p.add_argument("--name", default="custom", help="The dataset's name (config.json, provenance).")
  p.add_argument("--model", default="logged", help="What trained (config.json, report title).")
  p.add_argument("--class_names", type=lambda t: t.split(","), default=None,
                 help="C class names, comma-separated.")
  p.add_argument("--examples", default=None, help="An .npz with x_train (and x_test): row i is "
                 "example id i; drawn in the report.")
  p.add_argument("--kernels", type=lambda t: t.split(","), default=None,
                 help="Tracker kernels, comma-separated (default: all).")
  p.add_argument("--statistics", type=lambda t: [x for x in t.split(",") if x], default=[],
                 help="User statistics by import path ('package.module:name', the kernel "
                 "interface), comma-separated.")
  p.add_argument("--k", type=int, default=16, help="Examples per report grid.")
  p.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                 help="Write plots and report.html (--no-report: scores.npz only).")
  return p


def main(argv: Sequence[str] | None = None) -> None:
  args = parser().parse_args(argv)
  from regularity_jax import entrypoints  # pylint: disable=g-import-not-at-top
  entrypoints.guard_streams()
  path = entrypoints.run(lambda: score_logs(
      args.logs, args.workdir, name=args.name, model=args.model, class_names=args.class_names,
      examples=args.examples, kernels=args.kernels, statistics=args.statistics, k=args.k,
      report=args.report))
  print(f"run directory: {path}", file=sys.stdout)


if __name__ == "__main__":
  main()
