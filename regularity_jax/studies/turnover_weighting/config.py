r"""Study 3 (idea D): difficulty-based loss weighting (uniform, easy_first, hard_first,
medium_first, self_paced) on clean data, with 20% label noise and with a long-tailed class
imbalance; difficulty = the turn-over generalization error L(i; 1 - m_i).

  # the CPU-sized version whose report is in experiments/results/turnover/weighting/:
  python -m experiments.study --config=experiments/studies/turnover_weighting/config.py:cpu \
      --config.fashion_mnist_dir=../shared/data/fashion_mnist --workdir=runs/turnover_weighting_cpu
  # smoke (2 schemes, 1,000 examples; under 2 minutes on 2 CPU cores):
  python -m experiments.study --config=experiments/studies/turnover_weighting/config.py:smoke \
      --config.fashion_mnist_dir=../shared/data/fashion_mnist \
      --workdir=runs/turnover_weighting_smoke
  # full size (all 60,000 Fashion-MNIST examples, 3 seeds; for an accelerator):
  python -m experiments.study --config=experiments/studies/turnover_weighting/config.py \
      --config.fashion_mnist_dir=../shared/data/fashion_mnist --workdir=runs/turnover_weighting

Weights are recomputed every epoch (from epoch 1 on) from the run's own running turn-over
state (regularity_jax.weighting, temperature 2, mean 1). Noise: 20% symmetric label noise.
Long tail: class c keeps 10^(-c/9) of its examples (imbalance ratio 10), test set balanced.
Any difficulty of regularity_jax.weighting.SCORES can replace the default
(`--config.base.weighting.score=forgetting`, ...).

Expected (Zhou, Wu et al. 2023): under label noise easy-first weighting (down-weighting the
high-generalization-error, mostly mislabeled, examples) beats hard-first; on clean data the
schemes differ little; under class imbalance hard-first can help the tail classes.
Measured with `:cpu` (2 shared Intel Xeon CPU cores, jax 0.10.2, seed 0 only, Fashion-MNIST
4,000 train / 2,000 test, MLP 512-512, 20 epochs; 15 runs, 281 s;
experiments/results/turnover/weighting/): every scheme within about 1 point of uniform
(the test set's standard error is 0.9 points), so no scheme is shown better; with 20% noise
easy_first put 9% of the weight on the mislabeled examples (hard_first 35%) and scored 0.788
vs hard_first 0.779 (uniform 0.784).
"""

import ml_collections

from regularity_jax.studies.turnover_labels import config as turnover_labels


def base_config():
  """turnover_labels' MLP with turn-over dropout, on Fashion-MNIST, weighted by the
  generalization error of the flipped sub-network."""
  b = turnover_labels.base_config()
  b.dataset = "fashion_mnist"
  b.weighting.score = "generalization_error"
  b.weighting.temperature = 2.0
  b.weighting.start_epoch = 1
  b.num_epochs = 40
  return b


def get_config(arg: str = ""):
  c = ml_collections.ConfigDict()
  c.study = "turnover_weighting"
  c.dataset = "fashion_mnist"
  c.mnist_dir = "../shared/data/mnist"
  c.fashion_mnist_dir = "../shared/data/fashion_mnist"
  c.schemes = ("uniform", "easy_first", "hard_first", "medium_first", "self_paced")
  c.conditions = ("clean", "noisy", "long_tail")
  c.noise_kind = "symmetric"
  c.noise_fraction = 0.2
  c.imbalance_ratio = 10.0
  c.seeds = (0, 1, 2)
  c.base = base_config()
  if arg == "cpu":
    c.seeds = (0,)
    c.base.train_subset, c.base.test_subset = 4000, 2000
    c.base.num_epochs = 20
    c.base.checkpoint_every = 20
  elif arg == "smoke":
    c.seeds = (0,)
    c.schemes = ("uniform", "easy_first")
    c.base.train_subset, c.base.test_subset = 1000, 500
    c.base.model_kwargs.hidden = (128,)
    c.base.num_epochs = 4
    c.base.checkpoint_every = 4
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '', 'cpu' or 'smoke'")
  return c
