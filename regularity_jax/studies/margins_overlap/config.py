r"""Study B3 (margins, idea B): is the kept low-margin subset the same across seeds?

  # the CPU-sized version, reading the runs of margins_reduction.py:cpu (trains nothing; the
  # report is in experiments/results/margins/overlap/):
  python -m experiments.study --config=experiments/studies/margins_overlap/config.py:cpu \
      --config.runs_from=runs/margins_reduction_cpu --config.mnist_dir=../shared/data/mnist \
      --config.fashion_mnist_dir=../shared/data/fashion_mnist --workdir=runs/margins_overlap_cpu
  # smoke (trains its own 4 reduced MNIST runs on 2,000 examples; under 2 minutes on 2 CPU cores):
  python -m experiments.study --config=experiments/studies/margins_overlap/config.py:smoke \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/margins_overlap_smoke

This config is the reduction study's (`margins_reduction.py` with the same argument: same
base, dataset overrides, seeds and run names) with `study = 'margin_overlap'`. With
`runs_from` set to that study's workdir it reuses its finished runs (the data-dir flags must be
the same as there, or the configs differ and the run directories refuse them); with
`runs_from=''` it trains the reduced runs itself under its own workdir (no full runs). The
report gives the Jaccard overlap of the kept ids between every pair of seeds, per class and
overall, against the overlap of random subsets of the same size, for the first and the last
selection of each run (experiments/studies/margins_overlap/study.py defines every number).

Hardware and result of `:cpu`: the reduction study's (2 Intel Xeon CPU cores, jax 0.10.2, seeds
0-2, 10,000 train examples); see experiments/results/margins/overlap/report.md.
Expected (Banburski et al. 2021): the kept subset differs from run to run.
"""

from regularity_jax.studies.margins_reduction import config as margins_reduction


def get_config(arg: str = ""):
  c = margins_reduction.get_config(arg)
  c.study = "margins_overlap"
  return c
