r"""Quickstart: an MLP on MNIST-1D (generated locally, no download), every example tracked.

  python -m experiments.main --config=experiments/configs/quickstart.py --workdir=runs/quickstart

Data: MNIST-1D (Greydanus 2020; the `mnist1d` package's generator, 4,000 train / 1,000 test,
40-dim signals). Model: MLP 40-256-256-10. SGD lr 0.05 momentum 0.9, batch 128, 30 epochs.
Hardware and expected result: see the docstring's table in README.md ("Quickstart"); on 2 CPU
cores it finishes in well under 2 minutes.
"""

from regularity_jax.training import default_config


def get_config(arg: str = ""):
  c = default_config()
  c.dataset = "mnist1d"
  c.model = "mlp"
  c.model_kwargs.hidden = (256, 256)
  c.num_epochs = 30
  c.batch_size = 128
  c.learning_rate = 0.05
  c.momentum = 0.9
  c.weight_decay = 5e-4
  c.eval_every = 1
  c.checkpoint_every = 5
  if arg == "smoke":
    c.num_epochs = 4
    c.checkpoint_every = 2
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '' or 'smoke'")
  return c
