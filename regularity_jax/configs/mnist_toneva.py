r"""Toneva et al. 2019's MNIST protocol: forgetting statistics of every training example.

  python -m experiments.main --config=experiments/configs/mnist_toneva.py \
      --config.data_dir=../shared/data/mnist --config.num_seeds=5 --workdir=runs/mnist_toneva
  # CPU-sized check (< 2 minutes on 2 cores):
  python -m experiments.main --config=experiments/configs/mnist_toneva.py:smoke \
      --config.data_dir=../shared/data/mnist --workdir=runs/mnist_toneva_smoke

Protocol (each setting, its value, and where it comes from; tests/test_protocols.py pins them):
  dataset               'mnist'        the paper's MNIST experiments (all 60,000 training examples)
  model                 'toneva_cnn'   run_mnist.py `Net`: conv 10 5x5, pool, conv 20 5x5, pool,
                                       dense 50, dense 10 (github.com/mtoneva/example_forgetting)
  model_kwargs.dropout  0.0            their README runs MNIST with `--no_dropout`
  optimizer             'sgd'          run_mnist.py: optim.SGD
  learning_rate         0.01           run_mnist.py --lr default
  momentum              0.5            run_mnist.py --momentum default
  nesterov              False          run_mnist.py: plain SGD momentum
  weight_decay          0.0            run_mnist.py: no weight decay
  schedule              'constant'     run_mnist.py: no learning-rate scheduler
  batch_size            64             run_mnist.py --batch_size default
  num_epochs            200            run_mnist.py --epochs default
  augment               False          run_mnist.py: ToTensor and Normalize only
Statistics come from the train-mode forward pass of each step (run_mnist.py's `train`), as the
engine's presentation stream does. Their README sums 5 seeds (`--seed 1..5`): pass
`--config.num_seeds=5` (5 vmapped replicas), whose scores.npz combines them by Toneva's rule
(`train/forgetting_score`). Project choices, not the paper's: eval_every 5 and checkpoint_every
10; inputs normalized with the training split's mean and std (run_mnist.py uses the same
constants, 0.1307 / 0.3081).

Expected (paper): 91.7% of MNIST training examples unforgettable summed over 5 seeds, test
accuracy about 99%. The variant with the PyTorch example's dropout (0.5), which the paper did
not use for MNIST, is experiments/configs/mnist_toneva_dropout.py. Without `data_dir` the data
load through tensorflow-datasets (whose ids follow TFDS's order, not the IDX files').
"""

from regularity_jax.training import default_config


def get_config(arg: str = ""):
  c = default_config()
  c.dataset = "mnist"
  c.model = "toneva_cnn"
  c.model_kwargs.dropout = 0.0
  c.num_epochs = 200
  c.batch_size = 64
  c.eval_batch_size = 1000
  c.optimizer = "sgd"
  c.learning_rate = 0.01
  c.momentum = 0.5
  c.nesterov = False
  c.weight_decay = 0.0
  c.schedule = "constant"
  c.augment = False
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
