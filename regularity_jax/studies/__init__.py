"""Studies: experiments made of several training runs, each writing a Markdown report.

A study config is an ml_collections.ConfigDict with `study` (a name in STUDIES), `base` (a
`regularity_jax.training.default_config()` with overrides, the template of every training run
of the study) and the study's own parameters. `run_study(config, workdir)` trains the sub-runs
under workdir/runs/<name> (a rerun reuses finished ones and deletes nothing) and writes
workdir/report.md with its PNG figures.

  report      Report: Markdown tables, figures, and the evidence header (date, hardware, seeds)
  subruns     derive_config (dotted overrides of `base`), SubRuns (run or reuse, subsets)
  datasets    derived datasets as .npz (a subset of the training ids, a long-tailed subsample)
  figures     shared matplotlib figures
  turnover_labels, informative_examples, weighting_schemes, influence_demo: the studies of
              turn-over dropout (idea C) and difficulty weighting (idea D)

Each study module exposes `run(config, workdir) -> pathlib.Path` (the report). To add a study,
add its module to STUDIES.
"""

from __future__ import annotations

import os
import pathlib

from regularity_jax.studies import influence_demo
from regularity_jax.studies import informative_examples
from regularity_jax.studies import turnover_labels
from regularity_jax.studies import weighting_schemes
from regularity_jax.studies.errors import StudyError
from regularity_jax.studies.report import Report

STUDIES = {
    "turnover_labels": turnover_labels,
    "informative_examples": informative_examples,
    "weighting_schemes": weighting_schemes,
    "influence_demo": influence_demo,
}


def run_study(config, workdir: str | os.PathLike) -> pathlib.Path:
  """Runs the study named by `config.study` into `workdir`; returns its report path."""
  name = config.get("study", None)
  if name not in STUDIES:
    raise StudyError(f"unknown study {name!r}; set --config.study to one of {tuple(STUDIES)}")
  return STUDIES[name].run(config, pathlib.Path(workdir))


__all__ = ["STUDIES", "run_study", "StudyError", "Report"]
