r"""Toneva et al. 2019's MNIST protocol: forgetting statistics of every training example.

  python -m experiments.main --config=experiments/configs/mnist_toneva.py \
      --config.data_dir=../shared/data/mnist --workdir=runs/mnist_toneva
  # CPU-sized check (< 2 minutes on 2 cores):
  python -m experiments.main --config=experiments/configs/mnist_toneva.py:smoke \
      --config.data_dir=../shared/data/mnist --workdir=runs/mnist_toneva_smoke

Setup (SPEC.md): their CNN (2 conv 10/20 channels 5x5, dense 50/10, dropout as in the PyTorch
MNIST example), SGD lr 0.01 momentum 0.5, batch 64, 200 epochs, no augmentation.
Expected (paper): 91.7% of MNIST training examples unforgettable (summed over 5 seeds), test
accuracy about 99%. Without `data_dir` the data load through tensorflow-datasets.
"""

from regularity_jax.training import default_config


def get_config(arg: str = ""):
  c = default_config()
  c.dataset = "mnist"
  c.model = "toneva_cnn"
  c.model_kwargs.dropout = 0.5
  c.num_epochs = 200
  c.batch_size = 64
  c.eval_batch_size = 1000
  c.optimizer = "sgd"
  c.learning_rate = 0.01
  c.momentum = 0.5
  c.weight_decay = 0.0
  c.eval_every = 5
  c.checkpoint_every = 10
  if arg == "smoke":
    c.train_subset, c.test_subset = 4000, 1000
    c.num_epochs = 3
    c.eval_every = 1
    c.checkpoint_every = 3
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '' or 'smoke'")
  return c
