"""The studies: regularity_jax/studies/<name>/{config.py, study.py}, run by regularity_jax/study.py.

  turnover_labels, turnover_informative, turnover_weighting, turnover_influence
      turn-over dropout (idea C) and difficulty weighting (idea D)
  removal_curves, noise_prioritization, test_selection
      data selection (ideas A and E)
  label_issues, noise_or_hard
      noise or hard (idea E): cleanlab on turn-over vs K-fold probabilities; which score
      separates corrupted from hard clean examples
  margins_auc_generalization, margins_reduction, margins_overlap
      margin distributions (idea B)
"""

from __future__ import annotations

import importlib
import pathlib

from regularity_jax import sweeps
from regularity_jax.sweeps import StudyError

STUDIES = tuple(sorted(p.name for p in pathlib.Path(__file__).parent.iterdir()
                       if (p / "study.py").is_file()))


def load(name):
  """The study module regularity_jax/studies/<name>/study.py."""
  if name not in STUDIES:
    raise StudyError(f"unknown study {name!r}; set --config.study to one of {STUDIES}")
  return importlib.import_module(f"regularity_jax.studies.{name}.study")


def run(config, workdir) -> sweeps.StudyResult:
  """Runs the study named by `config.study` into `workdir` (`sweeps.run_study`)."""
  return sweeps.run_study(load(config.get("study", None)), config, workdir)
