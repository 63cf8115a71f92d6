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
  removal_curves, noise_prioritization, test_selection: the studies of data selection (ideas
              A and E): Toneva-style removal curves, prioritization under noise, test-set
              selection by regularity
  final_model the model of a finished sub-run from its checkpoint (logits, GraNd)
  margin_generalization, margin_reduction, margin_overlap: the studies of margin
              distributions (idea B): the margin AUC against generalization, dynamic
              reduction to the low-margin examples, and the overlap of the kept subsets

Each study module exposes `run(config, workdir) -> pathlib.Path` (the report). To add a study,
add its module to STUDIES.
"""

from __future__ import annotations

import os
import pathlib

from regularity_jax.studies import influence_demo
from regularity_jax.studies import margin_generalization
from regularity_jax.studies import margin_overlap
from regularity_jax.studies import margin_reduction
from regularity_jax.studies import noise_prioritization
from regularity_jax.studies import removal_curves
from regularity_jax.studies import test_selection
from regularity_jax.studies import informative_examples
from regularity_jax.studies import turnover_labels
from regularity_jax.studies import weighting_schemes
from regularity_jax.studies.errors import StudyError
from regularity_jax.studies.report import Report

STUDIES = {
    "margin_generalization": margin_generalization,
    "margin_reduction": margin_reduction,
    "margin_overlap": margin_overlap,
    "turnover_labels": turnover_labels,
    "informative_examples": informative_examples,
    "weighting_schemes": weighting_schemes,
    "influence_demo": influence_demo,
    "removal_curves": removal_curves,
    "noise_prioritization": noise_prioritization,
    "test_selection": test_selection,
}


def run_study(config, workdir: str | os.PathLike) -> pathlib.Path:
  """Runs the study named by `config.study` into `workdir`; returns its report path."""
  name = config.get("study", None)
  if name not in STUDIES:
    raise StudyError(f"unknown study {name!r}; set --config.study to one of {tuple(STUDIES)}")
  return STUDIES[name].run(config, pathlib.Path(workdir))


__all__ = ["STUDIES", "run_study", "StudyError", "Report"]
