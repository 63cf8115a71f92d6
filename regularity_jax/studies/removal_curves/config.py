r"""Removal curves (idea A, Toneva et al. 2019): test accuracy vs fraction of the training set
removed, easiest first, by forgetting, CBTL, AUM, EL2N, GraNd, turn-over memorization (loss
form) and at random.

  # the CPU-sized version whose report is in experiments/results/selection/removal_curves/:
  JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache python -m experiments.study \
      --config=experiments/studies/removal_curves/config.py:cpu \
      --config.mnist_dir=../shared/data/mnist \
      --config.fashion_mnist_dir=../shared/data/fashion_mnist --workdir=runs/removal_curves_cpu
  # smoke (MNIST, 1,000 examples, 1 seed, 3 scores, one fraction; under 2 minutes on 2 CPU cores):
  python -m experiments.study --config=experiments/studies/removal_curves/config.py:smoke \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/removal_curves_smoke
  # full size: Toneva's MNIST CNN and protocol (200 epochs), all 60,000 examples, 3 seeds;
  # for an accelerator:
  python -m experiments.study --config=experiments/studies/removal_curves/config.py \
      --config.mnist_dir=../shared/data/mnist \
      --config.fashion_mnist_dir=../shared/data/fashion_mnist --workdir=runs/removal_curves
  # CIFAR-10, ResNet-18, 200 epochs (experiments/configs/cifar10_resnet18.py); needs a GPU:
  python -m experiments.study --config=experiments/studies/removal_curves/config.py:cifar10 \
      --config.cifar10_dir=../shared/data/cifar10_jpeg_q75 --workdir=runs/removal_curves_cifar10

`<dataset>_dir` holds the dataset's files ('' loads through tensorflow-datasets). Each run is
cheap on a CPU at the `:cpu` size; most of its time is compilation, which
JAX_COMPILATION_CACHE_DIR (JAX's persistent cache) shares between the runs of the study.
experiments/studies/removal_curves/study.py defines every number of the report.

Hardware and result of `:cpu` (2 shared Intel Xeon CPU cores, jax 0.10.2, 3 seeds, 4,000 train /
2,000 test examples, MLP 784-256-10, 8 epochs): see
experiments/results/selection/removal_curves/report.md.
Expected (Toneva et al. 2019): with the full protocol MNIST loses 80% of its training set (least
forgotten first) and CIFAR-10 30% with no loss of test accuracy, and removing the least forgotten
beats removing at random.
"""

import ml_collections

from regularity_jax.configs import cifar10_resnet18
from regularity_jax.configs import mnist_toneva

SCORES = ("forgetting", "cbtl", "aum", "el2n", "grand", "memorization_loss", "random")


def get_config(arg: str = ""):
  c = ml_collections.ConfigDict()
  c.study = "removal_curves"
  c.mnist_dir = "../shared/data/mnist"
  c.fashion_mnist_dir = "../shared/data/fashion_mnist"
  c.cifar10_dir = "../shared/data/cifar10_jpeg_q75"
  c.datasets = ("mnist", "fashion_mnist")
  c.seeds = (0, 1, 2)
  c.scores = SCORES
  c.fractions_removed = (0.2, 0.4, 0.6, 0.8)
  c.rule = "hardest"                        # keep the hardest = remove the easiest first
  c.grand_epoch = 0                         # checkpoint GraNd is computed at (0 = the last)
  c.grand_batch = 250
  c.grand_chunk = 0                         # examples vectorized at once in GraNd (0 = the batch)
  c.tolerance = 0.005                       # "no loss": within this of the full run's accuracy
  c.notes = ()
  b = mnist_toneva.get_config()
  b.eval_every = b.num_epochs               # only the final test accuracy is needed
  b.checkpoint_every = 50
  b.progress_bar = False
  b.plots = False
  c.base = b
  if arg == "cpu":
    c.fractions_removed = (0.25, 0.5, 0.75)
    c.tolerance = 0.01
    b.train_subset, b.test_subset = 4000, 2000
    b.model = "mlp"
    b.model_kwargs = ml_collections.ConfigDict({"hidden": (256,)})
    b.learning_rate, b.momentum = 0.05, 0.9
    b.num_epochs = b.eval_every = b.checkpoint_every = 8
    c.notes = ("No GPU was lent to this task, so CIFAR-10 (ResNet-18, 200 epochs; "
               "`removal_curves.py:cifar10`) was not run: only MNIST and Fashion-MNIST "
               "subsets with an MLP, 8 epochs, on 2 shared CPU cores.",)
  elif arg == "smoke":
    c.datasets = ("mnist",)
    c.seeds = (0,)
    c.scores = ("forgetting", "grand", "random")
    c.fractions_removed = (0.5,)
    c.tolerance = 0.01
    b.train_subset, b.test_subset = 1000, 500
    b.model = "mlp"
    b.model_kwargs = ml_collections.ConfigDict({"hidden": (128,)})
    b.learning_rate, b.momentum = 0.05, 0.9
    b.num_epochs = b.eval_every = b.checkpoint_every = 3
  elif arg == "cifar10":
    c.datasets = ("cifar10",)
    c.fractions_removed = (0.1, 0.2, 0.3, 0.4, 0.5)
    c.grand_chunk = 25                      # per-example ResNet-18 gradients: bound the memory
    b = cifar10_resnet18.get_config()
    b.eval_every = b.num_epochs
    b.checkpoint_every = 50
    b.progress_bar = False
    b.plots = False
    c.base = b
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '', 'cpu', 'smoke' or 'cifar10'")
  return c
