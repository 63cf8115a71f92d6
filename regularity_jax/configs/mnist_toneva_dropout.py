r"""Toneva et al.'s MNIST CNN with the PyTorch MNIST example's dropout (0.5): NOT their protocol.

  python -m experiments.main --config=experiments/configs/mnist_toneva_dropout.py \
      --config.data_dir=../shared/data/mnist --config.num_seeds=5 --workdir=runs/mnist_toneva_dropout

Everything as experiments/configs/mnist_toneva.py except `model_kwargs.dropout=0.5` (channel
dropout after conv2 and unit dropout after dense 50, run_mnist.py without `--no_dropout`).
Presentations are counted in train mode, so dropout makes every example look less learned.
Measured 2026-12-01 on 2 Intel Xeon CPU cores (jax 0.10.2), both configs with
--config.train_subset=10000 --config.test_subset=1000 --config.num_epochs=10
--config.num_seeds=5 --config.eval_every=10 (4.0 and 4.3 minutes): combined over the 5 seeds
80.5% unforgettable without dropout (per seed 89.7-91.8%, test accuracy 0.968) against 16.1%
with it (per seed 49.4-53.4%, test accuracy 0.953). Use it to study that effect, not to
compare with the paper's 91.7%.
"""

from regularity_jax.configs import mnist_toneva


def get_config(arg: str = ""):
  c = mnist_toneva.get_config(arg)
  c.model_kwargs.dropout = 0.5
  return c
