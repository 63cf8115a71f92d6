r"""Study 1 (turn-over dropout, idea C): real vs random labels on MNIST and Fashion-MNIST.

  # the CPU-sized version whose report is in experiments/results/turnover/labels/:
  python -m experiments.study --config=experiments/studies/turnover_labels/config.py:cpu \
      --config.mnist_dir=../shared/data/mnist \
      --config.fashion_mnist_dir=../shared/data/fashion_mnist --workdir=runs/turnover_labels_cpu
  # smoke (MNIST only, 1,000 examples, 2 noise levels; under 2 minutes on 2 CPU cores):
  python -m experiments.study --config=experiments/studies/turnover_labels/config.py:smoke \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/turnover_labels_smoke
  # full size (all 60,000 examples, 3 seeds; for an accelerator):
  python -m experiments.study --config=experiments/studies/turnover_labels/config.py \
      --config.mnist_dir=../shared/data/mnist \
      --config.fashion_mnist_dir=../shared/data/fashion_mnist --workdir=runs/turnover_labels

`mnist_dir` / `fashion_mnist_dir` hold the IDX files ('' loads through tensorflow-datasets);
`--config.data_dir=DIR`, the main job's flag, sets the MNIST directory too (it wins over
`mnist_dir`), e.g. `--config.data_dir=../shared/data/mnist`.
For each dataset and fraction of random labels (0, 20, 50, 100%) one run of an MLP with
turn-over dropout (p = 0.5 after each hidden layer) scores the memorization of every training
example; the report gives the fitting speed of easy vs hard (clean run) and clean vs
mislabeled examples (noisy runs), the memorization distributions and their AUROC for flagging
the changed labels (experiments/studies/turnover_labels/study.py defines every number).

Expected (Liu, Lin, Jaggi 2021): randomized labels are memorized (AUROC well above 0.5); easy
examples are fitted faster than hard ones, but both from the start.
Measured with `:cpu` (2 shared Intel Xeon CPU cores, jax 0.10.2, seed 0, 4,000 train / 1,000
test examples, MLP 512-512, 30 epochs; 8 runs, 133 s; experiments/results/turnover/labels/):
AUROC of the loss-form memorization for the changed labels 0.958 / 0.866 / 0.510 (MNIST, 20 /
50 / 100% random labels) and 0.929 / 0.842 / 0.513 (Fashion-MNIST); easy and hard (and clean
and mislabeled) examples are fitted from the first epoch on, easy ones faster (MNIST: 55% vs
20% first learned in epoch 1). The own sub-networks fit every label within ~8 epochs, even at
100% random labels (the full network: 25% train accuracy).
"""

import ml_collections

from regularity_jax.training import default_config


def base_config():
  b = default_config()
  b.dataset = "mnist"
  b.model = "mlp"
  b.model_kwargs.hidden = (512, 512)
  b.turnover.enabled = True
  b.turnover.rate = 0.5
  b.optimizer = "sgd"
  b.learning_rate = 0.01
  b.momentum = 0.9
  b.batch_size = 128
  b.eval_batch_size = 1000
  b.num_epochs = 50
  b.eval_every = 1
  b.checkpoint_every = 10
  b.progress_bar = False
  b.plots = False
  return b


def get_config(arg: str = ""):
  c = ml_collections.ConfigDict()
  c.study = "turnover_labels"
  c.data_dir = ""  # when set: the MNIST directory (datasets[0]), as in experiments.main
  c.mnist_dir = "../shared/data/mnist"
  c.fashion_mnist_dir = "../shared/data/fashion_mnist"
  c.datasets = ("mnist", "fashion_mnist")
  c.noise_fractions = (0.0, 0.2, 0.5, 1.0)
  c.seeds = (0, 1, 2)
  c.memorization_key = "memorization_loss"  # groups and histograms use this score
  c.easy_quantile = 0.5   # clean run: easy = memorization <= this quantile
  c.hard_quantile = 0.9   # clean run: hard = memorization >= this quantile
  c.base = base_config()
  if arg == "cpu":
    c.seeds = (0,)
    c.base.train_subset, c.base.test_subset = 4000, 1000
    c.base.num_epochs = 30
    c.base.checkpoint_every = 30
  elif arg == "smoke":
    c.datasets = ("mnist",)
    c.noise_fractions = (0.0, 0.5)
    c.seeds = (0,)
    c.base.train_subset, c.base.test_subset = 1000, 500
    c.base.model_kwargs.hidden = (128,)
    c.base.num_epochs = 6
    c.base.checkpoint_every = 6
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '', 'cpu' or 'smoke'")
  return c
