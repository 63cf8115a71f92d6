r"""Noise or hard: which per-example score separates corrupted examples from hard clean ones.

  # the CPU-sized version whose report is in experiments/results/noise/noise_or_hard/:
  JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache python -m experiments.study \
      --config=experiments/studies/noise_or_hard/config.py:cpu \
      --config.mnist_dir=../shared/data/mnist \
      --config.fashion_mnist_dir=../shared/data/fashion_mnist --workdir=runs/noise_or_hard_cpu
  # smoke (MNIST, symmetric 20%, 1 seed, 600 examples; about a minute on 2 CPU cores):
  python -m experiments.study --config=experiments/studies/noise_or_hard/config.py:smoke \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/noise_or_hard_smoke
  # CIFAR-10 (the JPEG q75 re-encoding of ../shared/data; ResNet-18, for a GPU):
  python -m experiments.study --config=experiments/studies/noise_or_hard/config.py:cifar10 \
      --config.cifar10_dir=../shared/data/cifar10_jpeg_q75 --workdir=runs/noise_or_hard_cifar10

For each dataset, corruption kind (symmetric, pair, random_labels, shuffled_pixels,
gaussian_images) and level, 7 training programs, each training every seed at once
(`num_seeds`, vmapped replicas): a standard run (forgetting, CBTL, AUM, EL2N over training,
loss, confidence, variability; its checkpoint of `early_epoch` gives EL2N early and GraNd, as
Data Diet scores at an early epoch averaged over seeds), a turn-over run (memorization,
generalization error, cleanlab on the flipped sub-network), two AUM threshold-sample runs
(sets 1 and 2: every example gets a flag) and `folds` K-fold runs (cleanlab on
cross-validated probabilities). experiments/studies/noise_or_hard/study.py defines every
number: AUROC and precision at n (n = the number of corrupted examples) of each score for
the corrupted examples, and AUROC of each score for corrupted against "hard but clean"
examples (clean, and misclassified by the K-fold models that never trained on them).

Hardware and runtime of `:cpu`: 140 training programs (seeds 0-2 vmapped in each), 16.8 min
wall (1,004 s for the study, measured 2026-12-02) on 2 shared Intel Xeon CPU cores, jax 0.10.2,
with a warm JAX_COMPILATION_CACHE_DIR; experiments/results/noise/noise_or_hard/report.md has
the header (hardware, seeds, wall time) and the table.
"""

import ml_collections

from regularity_jax.training import default_config

SCORES = ("forgetting", "cbtl", "aum", "aum_flag", "el2n_early", "el2n", "grand_early", "loss",
          "confidence", "variability", "memorization", "generalization_error",
          "cleanlab_turnover", "cleanlab_kfold")


def base_config():
  b = default_config()
  b.dataset = "mnist"
  b.model = "mlp"
  b.model_kwargs.hidden = (128,)
  b.optimizer = "sgd"
  b.learning_rate = 0.05
  b.momentum = 0.9
  b.batch_size = 128
  b.eval_batch_size = 1000
  b.num_epochs = 10
  b.eval_every = 1
  b.checkpoint_every = 10
  b.train_subset, b.test_subset = 2000, 500
  b.progress_bar = False
  b.plots = False
  return b


def get_config(arg: str = ""):
  c = ml_collections.ConfigDict()
  c.study = "noise_or_hard"
  c.data_dir = ""  # when set: the directory of datasets[0], as in experiments.main
  c.mnist_dir = "../shared/data/mnist"
  c.fashion_mnist_dir = "../shared/data/fashion_mnist"
  c.cifar10_dir = "../shared/data/cifar10_jpeg_q75"
  c.datasets = ("mnist", "fashion_mnist")
  c.corruptions = ("symmetric", "pair", "random_labels", "shuffled_pixels", "gaussian_images")
  c.levels = (0.2, 0.4)
  c.seeds = (0, 1, 2)
  c.folds = 3
  c.early_epoch = 2      # EL2N early and GraNd: the standard run's checkpoint of this epoch
  c.turnover_rate = 0.5
  c.scores = SCORES
  c.base = base_config()
  if arg == "cpu" or not arg:
    pass
  elif arg == "smoke":
    c.datasets = ("mnist",)
    c.corruptions = ("symmetric",)
    c.levels = (0.2,)
    c.seeds = (0,)
    c.folds = 2
    c.early_epoch = 1
    c.base.train_subset, c.base.test_subset = 600, 300
    c.base.model_kwargs.hidden = (64,)
    c.base.num_epochs = c.base.checkpoint_every = 3
  elif arg == "cifar10":
    c.datasets = ("cifar10",)
    c.early_epoch = 10
    b = c.base
    b.dataset, b.model, b.model_kwargs = "cifar10", "resnet18", ml_collections.ConfigDict()
    b.train_subset, b.test_subset = 0, 0
    b.learning_rate, b.weight_decay, b.augment, b.num_epochs = 0.1, 5e-4, True, 60
    b.schedule, b.checkpoint_every = "cosine", 60
  else:
    raise ValueError(f"unknown config argument {arg!r}; use '', 'cpu', 'smoke' or 'cifar10'")
  return c
