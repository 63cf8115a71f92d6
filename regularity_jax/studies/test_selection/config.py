r"""Test-set selection by regularity (idea A, Zhang et al. 2021): accuracy and expected
calibration error on the most and the least regular test examples, by CBGL and by
mal-generalizing events.

  # the CPU-sized version whose report is in experiments/results/selection/test_selection/:
  JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache python -m experiments.study \
      --config=experiments/studies/test_selection/config.py:cpu \
      --config.mnist_dir=../shared/data/mnist \
      --config.fashion_mnist_dir=../shared/data/fashion_mnist --workdir=runs/test_selection_cpu
  # smoke (MNIST, 2,000 examples, 2 seeds, 3 epochs; under 2 minutes on 2 CPU cores):
  python -m experiments.study --config=experiments/studies/test_selection/config.py:smoke \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/test_selection_smoke
  # full size (Toneva's MNIST CNN on all of MNIST and Fashion-MNIST, 3 seeds; accelerator):
  python -m experiments.study --config=experiments/studies/test_selection/config.py \
      --config.mnist_dir=../shared/data/mnist \
      --config.fashion_mnist_dir=../shared/data/fashion_mnist --workdir=runs/test_selection

Each seed trains one model on the training split and evaluates the test split every epoch
(CBGL = number of correct evaluations, mal-generalizing events = correct then wrong). The 10%
and 25% most / least regular test examples are scored by that run's final model and by the
model of the next seed, which took no part in the ranking
(experiments/studies/test_selection/study.py defines every number).

Hardware and result of `:cpu` (2 shared Intel Xeon CPU cores, jax 0.10.2, 3 seeds, 8,000 train /
all 10,000 test examples, MLP 784-256-10, 10 epochs): see
experiments/results/selection/test_selection/report.md.
Expected (Zhang et al. 2021): irregular test examples (low CBGL, many mal-generalizing events)
are far less accurate and worse calibrated than regular ones, also for an independent model.
"""

import ml_collections

from regularity_jax.configs import mnist_toneva


def get_config(arg: str = ""):
  c = ml_collections.ConfigDict()
  c.study = "test_selection"
  c.mnist_dir = "../shared/data/mnist"
  c.fashion_mnist_dir = "../shared/data/fashion_mnist"
  c.datasets = ("mnist", "fashion_mnist")
  c.seeds = (0, 1, 2)
  c.bys = ("cbgl", "malgeneralizing")
  c.fractions = (0.1, 0.25)
  c.ece_bins = 15
  c.show_examples = 16
  c.notes = ()
  b = mnist_toneva.get_config()
  b.num_epochs = 50
  b.eval_every = 1
  b.progress_bar = False
  b.plots = False
  c.base = b
  if arg in ("cpu", "smoke"):
    b.model = "mlp"
    b.model_kwargs = ml_collections.ConfigDict({"hidden": (256,)})
    b.learning_rate, b.momentum = 0.05, 0.9
  if arg == "cpu":
    b.train_subset, b.test_subset = 8000, 0
    b.num_epochs = b.checkpoint_every = 10
  elif arg == "smoke":
    c.datasets = ("mnist",)
    c.seeds = (0, 1)
    c.fractions = (0.1,)
    b.train_subset, b.test_subset = 2000, 1000
    b.model_kwargs.hidden = (128,)
    b.num_epochs = b.checkpoint_every = 3
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '', 'cpu' or 'smoke'")
  return c
