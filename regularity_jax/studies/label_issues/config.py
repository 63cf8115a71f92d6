r"""Label issues by confident learning: turn-over dropout (one run) against K-fold (K runs).

  # the CPU-sized version whose report is in experiments/results/noise/label_issues/
  # (MNIST + Fashion-MNIST, 4,000 examples, 25% symmetric noise, seed 0, 5 folds; 12 runs,
  # 87 s wall on 2 shared Xeon cores, jax 0.10.2, 2026-12-02):
  python -m experiments.study --config=experiments/studies/label_issues/config.py:cpu \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/label_issues_cpu
  # smoke (1,000 examples, 25% symmetric noise, 3 folds; under 2 minutes on 2 CPU cores):
  python -m experiments.study --config=experiments/studies/label_issues/config.py:smoke \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/label_issues_smoke

For each dataset, corruption and seed: one run with turn-over dropout whose flipped
sub-network gives every training example an out-of-sample probability
(`--config.turnover.label_issues=True`), and K runs of the same model without turn-over, run
k holding out fold k (`--config.holdout.folds=K --config.holdout.fold=k`), whose held-out
probabilities together cover every example (`estimators.label_issues.cross_validated_probs`).
cleanlab's `find_label_issues` (prune_by_noise_rate) and self-confidence label quality run on
both. experiments/studies/label_issues/study.py defines every number: precision, recall and F1
of the flagged examples for the changed labels, AUROC of 1 - label quality, and the wall time
of the training runs each needs (the turn-over run, or the K fold runs together).

Expected: confident learning from K-fold probabilities finds most changed labels
(Northcutt et al. 2021); turn-over gets its probabilities from one run (K times fewer), from
sub-networks of half the width, so its quality is the question this study answers.
"""

import ml_collections

from regularity_jax.training import default_config


def base_config():
  b = default_config()
  b.dataset = "mnist"
  b.model = "mlp"
  b.model_kwargs.hidden = (512, 512)
  b.optimizer = "sgd"
  b.learning_rate = 0.01
  b.momentum = 0.9
  b.batch_size = 128
  b.eval_batch_size = 1000
  b.num_epochs = 20
  b.eval_every = 5
  b.checkpoint_every = 20
  b.progress_bar = False
  b.plots = False
  return b


def get_config(arg: str = ""):
  c = ml_collections.ConfigDict()
  c.study = "label_issues"
  c.data_dir = ""  # when set: the MNIST directory (datasets[0]), as in experiments.main
  c.mnist_dir = "../shared/data/mnist"
  c.fashion_mnist_dir = "../shared/data/fashion_mnist"
  c.datasets = ("mnist", "fashion_mnist")
  c.corruptions = ("symmetric",)
  c.noise_fractions = (0.25,)
  c.folds = 5
  c.seeds = (0, 1, 2)
  c.turnover_rate = 0.5
  c.base = base_config()
  if arg == "cpu":
    c.seeds = (0,)
    c.base.train_subset, c.base.test_subset = 4000, 1000
  elif arg == "smoke":
    c.datasets = ("mnist",)
    c.seeds = (0,)
    c.folds = 3
    c.base.train_subset, c.base.test_subset = 1000, 500
    c.base.model_kwargs.hidden = (128,)
    c.base.num_epochs = c.base.checkpoint_every = 6
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '', 'cpu' or 'smoke'")
  return c
