r"""Toneva et al.'s MNIST CNN with the PyTorch MNIST example's dropout (0.5): NOT their protocol.

  python -m experiments.main --config=experiments/configs/mnist_toneva_dropout.py \
      --config.data_dir=../shared/data/mnist --config.num_seeds=5 --workdir=runs/mnist_toneva_dropout

Everything as experiments/configs/mnist_toneva.py except `model_kwargs.dropout=0.5` (channel
dropout after conv2 and unit dropout after dense 50, run_mnist.py without `--no_dropout`).
Presentations are counted in train mode, so dropout makes every example look less learned:
measured on 2 CPU cores, 5 seeds x 10 epochs on the same 10,000 examples, 16.1% combined
unforgettable with dropout against 80.5% without. Use it to study that effect, not to compare
with the paper's 91.7%.
"""

from experiments.configs import mnist_toneva


def get_config(arg: str = ""):
  c = mnist_toneva.get_config(arg)
  c.model_kwargs.dropout = 0.5
  return c
