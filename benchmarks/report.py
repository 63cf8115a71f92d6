r"""The run report of a CIFAR-10-sized run (issue 16): page size and build time.

  python -m benchmarks.report --cifar_dir=../shared/data/cifar10_jpeg_q75 \
      --out=benchmarks/RESULTS_report_cpu.md

All 50,000 CIFAR-10 training and 10,000 test images (the JPEG q75 copy), with random per-example
statistics for every presentation score and turn-over's (10 training scores, CBGL and
mal-generalizing events): the grids then draw on examples from all over the split, as a real
run's do. `report.write` is timed three times (median), with and without the PNG grids; the
data loading is not part of it (at the end of a run the data are in memory).
"""

from __future__ import annotations

import datetime
import json
import pathlib
import platform
import statistics
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

_OUT = flags.DEFINE_string("out", "benchmarks/RESULTS_report_cpu.md", "Markdown file to write.")
_CIFAR = flags.DEFINE_string("cifar_dir", "../shared/data/cifar10_jpeg_q75",
                             "CIFAR-10 (any local format).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed builds per case.")

KEYS = ("mean_correct", "aum", "mean_el2n", "mean_loss", "confidence", "variability",
        "memorization", "generalization_error", "normalized_margin")


def fake_run(workdir: pathlib.Path, dataset, seed: int = 0) -> None:
  """config.json and scores.npz of a run on `dataset` with random statistics."""
  from regularity_jax.runs import scores_file  # pylint: disable=import-outside-toplevel
  from regularity_jax.training import default_config  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(seed)
  scores = {}
  for split, part in (("train", dataset.train), ("test", dataset.test)):
    n = len(part)
    scores.update({f"{split}/example_id": part.ids, f"{split}/label": part.labels,
                   f"{split}/observations": np.full(n, 30),
                   f"{split}/forgetting_events": rng.integers(0, 6, n),
                   f"{split}/never_learned": rng.random(n) < 0.02})
    for key in KEYS:
      scores[f"{split}/{key}"] = rng.random(n).astype(np.float32)
  workdir.mkdir(parents=True)
  config = default_config()
  config.dataset = dataset.name
  (workdir / "config.json").write_text(json.dumps(config.to_dict()))
  scores_file.write(workdir / "scores.npz", scores,
                    {"format": scores_file.FORMAT, "dataset": dataset.name, "seeds": [seed]})


def main(argv):
  del argv
  import jax  # pylint: disable=import-outside-toplevel
  from regularity_jax import data, report  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  dataset = data.load_dataset("cifar10", _CIFAR.value)
  load_s = time.perf_counter() - t0
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    workdir = pathlib.Path(tmp) / "run"
    fake_run(workdir, dataset)
    for pngs in (False, True):
      times = []
      for _ in range(_REPEATS.value):
        t0 = time.perf_counter()
        path = report.write(workdir, dataset=dataset, pngs=pngs)
        times.append(time.perf_counter() - t0)
      size = path.stat().st_size
      grid_bytes = sum(p.stat().st_size for p in (workdir / "plots" / "grids").glob("*.png")) \
          if pngs else 0
      rows.append((pngs, statistics.median(times), min(times), max(times), size, grid_bytes))
  lines = [
      "# The report of a CIFAR-10-sized run (CPU)", "",
      f"- **date**: {datetime.date.today().isoformat()}",
      f"- **hardware**: {platform.processor() or platform.machine()}, "
      f"{len(__import__('os').sched_getaffinity(0))} cores; {platform.python_version()}, "
      f"jax {jax.__version__}",
      f"- **data**: CIFAR-10 JPEG q75 from {_CIFAR.value}: {len(dataset.train)} train / "
      f"{len(dataset.test)} test images (loaded in {load_s:.1f} s, not counted); random "
      "statistics for 10 training scores and the 2 test scores (16 examples per grid)",
      "- **command**: `python -m benchmarks.report "
      f"--cifar_dir={_CIFAR.value}`", "",
      "| PNG grids | build s (median of "
      f"{_REPEATS.value}) | min s | max s | report.html MB | plots/grids MB |",
      "|---|---|---|---|---|---|"]
  for pngs, med, lo, hi, size, grid_bytes in rows:
    lines.append(f"| {'yes' if pngs else 'no'} | {med:.2f} | {lo:.2f} | {hi:.2f} | "
                 f"{size / 1e6:.2f} | {grid_bytes / 1e6:.2f} |")
  lines += ["", "Targets (issue 16): at most 5 MB and at most 10 s on 2 cores."]
  pathlib.Path(_OUT.value).write_text("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
