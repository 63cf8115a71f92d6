r"""Study B2 (margins, idea B): dynamic reduction to the low-margin examples vs full training
and vs a random subset of the same size.

  # the CPU-sized version whose report is in experiments/results/margins/reduction/:
  python -m experiments.study --config=experiments/studies/margins_reduction/config.py:cpu \
      --config.mnist_dir=../shared/data/mnist \
      --config.fashion_mnist_dir=../shared/data/fashion_mnist --workdir=runs/margins_reduction_cpu
  # smoke (MNIST, 2,000 examples, 2 seeds, 6 runs; under 2 minutes on 2 CPU cores):
  python -m experiments.study --config=experiments/studies/margins_reduction/config.py:smoke \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/margins_reduction_smoke
  # full size (all 60,000 examples of both datasets, 3 seeds, 5 fractions: 66 runs):
  python -m experiments.study --config=experiments/studies/margins_reduction/config.py \
      --config.mnist_dir=../shared/data/mnist \
      --config.fashion_mnist_dir=../shared/data/fashion_mnist --workdir=runs/margins_reduction
  # CIFAR-10 with ResNet-18 (needs a GPU; 200 epochs x 9 runs per seed):
  python -m experiments.study --config=experiments/studies/margins_reduction/config.py:cifar10 \
      --config.cifar10_dir=../shared/data/cifar10_jpeg_q75 --workdir=runs/margins_reduction_cifar10

For each dataset and seed: one full run, and for each kept fraction (10, 5, 1, 0.5%; the full
config adds 0.2%) one run that, once the training split is separated (eval-mode training
accuracy >= reduction.threshold), trains only on the lowest-margin fraction re-selected every
epoch (`reduction.by=margin`), and one on a random subset of the same size
(`reduction.by=random`). The report gives test accuracy, the paired drop against the full run
with a 95% t-interval, examples presented and wall time
(experiments/studies/margins_reduction/study.py defines every number). `dataset_overrides.<name>`
holds per-dataset fields of `base` (e.g. Fashion-MNIST's MLP needs a learning-rate drop and a
lower separation threshold to get near-separated on CPU budgets).

Protocol of `base` (each setting, its value, and where it comes from; tests/test_protocols.py
pins them):
  base.reduction.threshold   1.0                 "separated": every training example
                                                 classified correctly (Banburski et al. 2021, arXiv 2107.10199)
  base.reduction.every       1                   project choice: re-select every epoch
  base.margins.normalizer    'frobenius_product'  their normalized margin (product of the
                                                 layers' Frobenius norms)
  base.model                 'mlp'               project choice: an MLP 784-256-10 (the paper's
                                                 networks and data are not reproduced here)
  base.learning_rate         0.1                 project choice (SGD, momentum 0.9, batch 128)
The kept fractions (10% down to 0.2%: "reduced by more than 99%") and the same-size random
control are the paper's claim made testable; the Fashion-MNIST overrides are project choices.

Hardware and result of `:cpu` (2 Intel Xeon CPU cores shared with other jobs, jax 0.10.2,
seeds 0-2, 10,000 train / 10,000 test examples, MLP): see
experiments/results/margins/reduction/report.md. `:cifar10` was not run: no GPU was available.
Expected (Banburski et al. 2021): once separated, training on 1% or less of the examples (the
low-margin ones) loses no significant test accuracy.
"""

import ml_collections

from regularity_jax.training import default_config


def base_config():
  b = default_config()
  b.dataset = "mnist"
  b.model = "mlp"
  b.model_kwargs.hidden = (256,)
  b.optimizer = "sgd"
  b.learning_rate = 0.1
  b.momentum = 0.9
  b.batch_size = 128
  b.eval_batch_size = 2000
  b.num_epochs = 40
  b.eval_every = 1  # re-selection reads the latest evaluation of the whole training split
  b.checkpoint_every = 40
  b.reduction.threshold = 1.0  # "separated": every training example classified correctly
  b.reduction.every = 1
  b.tracking.kernels = ("margins",)  # the margins are all the reduction reads
  b.margins.normalizer = "frobenius_product"
  b.progress_bar = False
  b.plots = False
  return b


def cifar10_base():
  """ResNet-18 on CIFAR-10 (Toneva et al.'s protocol, experiments/configs/cifar10_resnet18.py)."""
  b = base_config()
  b.dataset = "cifar10"
  b.model = "resnet18"
  b.model_kwargs = ml_collections.ConfigDict()
  b.dtype = "bfloat16"
  b.num_epochs = 200
  b.learning_rate = 0.1
  b.nesterov = True
  b.weight_decay = 5e-4
  b.schedule = "multistep"
  b.lr_milestones = (60, 120, 160)
  b.lr_gamma = 0.2
  b.augment = True
  b.crop_padding = 4
  b.eval_batch_size = 1000
  b.checkpoint_every = 10
  # With crop + flip the eval-mode training accuracy creeps to 1 only after the lr drops.
  b.reduction.threshold = 0.999
  return b


def get_config(arg: str = ""):
  c = ml_collections.ConfigDict()
  c.study = "margins_reduction"
  c.datasets = ("mnist", "fashion_mnist")
  c.mnist_dir = "../shared/data/mnist"
  c.fashion_mnist_dir = "../shared/data/fashion_mnist"
  c.cifar10_dir = "../shared/data/cifar10_jpeg_q75"
  c.fractions = (0.1, 0.05, 0.01, 0.005, 0.002)
  c.methods = ("margin", "random")
  c.seeds = (0, 1, 2)
  c.tolerance = 0.005  # a mean drop in test accuracy up to this counts as "no significant loss"
  c.base = base_config()
  c.dataset_overrides = ml_collections.ConfigDict({
      "fashion_mnist": {"model_kwargs": {"hidden": (512,)}, "learning_rate": 0.05,
                        "schedule": "multistep", "lr_milestones": (15,), "lr_gamma": 0.1,
                        "reduction": {"threshold": 0.99}}})
  c.runs_from = ""  # read by the overlap study (margins_overlap.py), which shares these runs
  if arg == "cpu":
    c.fractions = (0.1, 0.05, 0.01, 0.005)
    c.base.train_subset, c.base.test_subset = 10000, 0
    c.base.num_epochs = 20
    c.base.checkpoint_every = 20
    # An MLP does not separate 10,000 Fashion-MNIST examples within a CPU budget (98.7% after
    # 40 epochs): 30 epochs with the lr drop at 15, and "separated" means 97% here.
    c.dataset_overrides.fashion_mnist.num_epochs = 30
    c.dataset_overrides.fashion_mnist.checkpoint_every = 30
    c.dataset_overrides.fashion_mnist.reduction.threshold = 0.97
  elif arg == "smoke":
    c.datasets = ("mnist",)
    c.fractions = (0.05,)
    c.seeds = (0, 1)
    c.base.train_subset, c.base.test_subset = 2000, 1000
    c.base.num_epochs = 6
    c.base.checkpoint_every = 6
    c.base.reduction.threshold = 0.95
  elif arg == "cifar10":
    c.datasets = ("cifar10",)
    c.fractions = (0.1, 0.05, 0.01, 0.005)
    c.base = cifar10_base()
    c.dataset_overrides = ml_collections.ConfigDict()
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '', 'cpu', 'smoke' or 'cifar10'")
  return c
