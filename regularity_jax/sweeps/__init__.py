"""Sweeps: the machinery of the studies in experiments/studies/ (several runs and a report).

A study is a module with

  TITLE                          the report's title
  check(config)                  StudyError (one line) for an unusable study config
  sweep(config, runs) -> records the training runs: `runs.run(name, training_config)` trains
                                 one or reuses it when finished (`subruns.SubRuns`); records
                                 maps names to `training.RunResult`s (and whatever else the
                                 measurement needs that only a run can give)
  measure(config, records) -> measured   pure: the numbers of the report (tables of rows),
                                 unit-tested on recorded records
  report(config, records, measured, report, runs)   tables, figures and the verdict into
                                 `Report` (`runs` says which runs were trained or reused)

and `run_study(study, config, workdir)` runs the four in order and writes workdir/report.md.
A study whose runs live in another study's workdir also has `runs_root(config, workdir)`.

  subruns      derive_config (dotted overrides of `base`), SubRuns (run or reuse, subsets)
  report       Report: Markdown tables, figures, and the evidence header (date, hardware, seeds)
  statistics   the statistics of the reports, from scipy
  figures      shared matplotlib figures
  datasets     derived datasets as .npz (a subset of the training ids, a long-tailed subsample)
  final_model  the model of a finished run from its checkpoint (logits, GraNd)
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from types import ModuleType
from typing import Any

from regularity_jax.sweeps.errors import StudyError
from regularity_jax.sweeps.report import Report
from regularity_jax.sweeps.subruns import SubRuns


@dataclasses.dataclass
class StudyResult:
  """What `run_study` returns: the report's path, the records and the measured tables."""
  report: pathlib.Path
  records: dict[str, Any]
  measured: dict[str, Any]


def run_study(study: ModuleType, config, workdir: str | os.PathLike) -> StudyResult:
  """check, sweep, measure and report `study` with `config` into `workdir`."""
  study.check(config)
  from regularity_jax.runs import directory  # pylint: disable=g-import-not-at-top
  workdir = directory.expand_path(workdir)  # ~ and $VARS; absolute
  directory.check_run_path(workdir)
  # A study may read the runs of another one (its `runs_root`): then nothing trains twice.
  runs = SubRuns(study.runs_root(config, workdir) if hasattr(study, "runs_root") else workdir)
  report = Report(workdir, study.TITLE, seeds=tuple(config.get("seeds", ())))  # starts the clock
  records = study.sweep(config, runs)
  measured = study.measure(config, records)
  if study.__doc__:
    report.preformatted(study.__doc__.split("\n\n", 1)[1])
  study.report(config, records, measured, report, runs)
  link_run_reports(report, runs)
  return StudyResult(report=report.write(), records=records, measured=measured)


def link_run_reports(report: Report, runs: SubRuns) -> None:
  """Ends the study's report with a "Run reports" section: a link to the report.html of each
  of its training runs (`regularity_jax.report`), relative to the study's directory."""
  names = list(dict.fromkeys(runs.trained + runs.reused))
  pages = [(n, runs.path(n) / "report.html") for n in names]
  pages = [(n, p) for n, p in pages if p.is_file()]
  report.heading("Run reports")
  if not pages:
    report.paragraph("No training run of this study wrote a report.html (their config had "
                     "report=False); `python -m experiments.report --workdir=RUN` writes one.")
    return
  report.paragraph(f"Each training run's examples, data map and curves ({len(pages)} of "
                   f"{len(names)} runs): open the file in a browser.")
  report.bullets(f"[{n}]({os.path.relpath(p, report.workdir)})" for n, p in pages)


__all__ = ["Report", "StudyError", "StudyResult", "SubRuns", "link_run_reports", "run_study"]
