r"""Fashion-MNIST with the small fast CNN: forgetting, margins and data maps of every example.

  python -m experiments.main --config=experiments/configs/fashion_mnist.py \
      --config.data_dir=../shared/data/fashion_mnist --workdir=runs/fashion_mnist
  # CPU-sized check (< 2 minutes on 2 cores):
  python -m experiments.main --config=experiments/configs/fashion_mnist.py:smoke \
      --config.data_dir=../shared/data/fashion_mnist --workdir=runs/fashion_mnist_smoke

Setup: small_cnn (conv-BN-ReLU blocks 32/64/128), SGD lr 0.05 momentum 0.9 nesterov, weight
decay 5e-4, cosine schedule, batch 128, 30 epochs, random crop (2 px) + flip.
Expected: about 92-93% test accuracy (a small CNN of this size; not a paper number).
"""

from regularity_jax.training import default_config


def get_config(arg: str = ""):
  c = default_config()
  c.dataset = "fashion_mnist"
  c.model = "small_cnn"
  c.num_epochs = 30
  c.batch_size = 128
  c.optimizer = "sgd"
  c.learning_rate = 0.05
  c.momentum = 0.9
  c.nesterov = True
  c.weight_decay = 5e-4
  c.schedule = "cosine"
  c.augment = True
  c.crop_padding = 2
  c.eval_every = 1
  c.checkpoint_every = 5
  if arg == "smoke":
    c.train_subset, c.test_subset = 2000, 500
    c.model_kwargs.widths = (16, 32, 64)
    c.num_epochs = 3
    c.checkpoint_every = 3
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '' or 'smoke'")
  return c
