r"""Study 4 (turn-over dropout, idea C): Kobayashi et al. (2020)'s demo: removing the training
examples with the most harmful influence on a validation set lowers its loss.

  # the CPU-sized version whose report is in experiments/results/turnover/influence/:
  python -m experiments.study --config=experiments/studies/turnover_influence/config.py:cpu \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/turnover_influence_cpu
  # smoke (300 / 50 examples, a small MLP; under 2 minutes on 2 CPU cores):
  python -m experiments.study --config=experiments/studies/turnover_influence/config.py:smoke \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/turnover_influence_smoke
  # 2 scoring x 3 retrain seeds, 4 k, 3 removals (80 training runs; for an accelerator):
  python -m experiments.study --config=experiments/studies/turnover_influence/config.py \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/turnover_influence

Protocol of the scoring runs, `base` (each setting, its value, and where it comes from: the
demo of Kobayashi et al. 2020, arXiv 2012.04207, Section 5; tests/test_protocols.py pins them):
  base.dataset               'mnist'             the demo's MNIST
  base.train_subset          3000                3,000 training examples
  base.test_subset           200                 200 validation examples (drawn from the test
                                                 split here)
  base.model                 'mlp'               an MLP 784-768-768-768-10
  base.model_kwargs.hidden   (768, 768, 768)     three hidden layers of 768
  base.model_kwargs.use_bias False               bias-free
  base.turnover.enabled      True                turn-over dropout ...
  base.turnover.rate         0.5                 ... with p = 0.5 on every hidden layer
  base.optimizer             'sgd'               SGD
  base.learning_rate         0.01                lr 0.01
  base.momentum              0.9                 momentum 0.9
  base.weight_decay          0.01                weight decay 0.01
  base.batch_size            32                  batch 32
  base.num_epochs            40                  40 epochs
The scoring run ends with the influence of every training example on every validation example
(turnover.influence_targets='test', influence.npz); the k most harmful (most negative total
influence) or k random examples are removed and the rest retrained (same config) with each
retrain seed. Project choices: eval_batch_size, eval_every 1, checkpoint_every 40.

Expected (Kobayashi et al. 2020): removing the most harmful examples lowers the validation
loss; removing random ones does not.
Measured with `:cpu` (2 shared Intel Xeon CPU cores, jax 0.10.2, the paper's setup, scoring
seed 0, retrain seeds 0-1, k in 30/100/300; 15 runs, 461 s;
experiments/results/turnover/influence/): NOT reproduced. Full set: validation loss 0.519;
removing the 30 most harmful changed it by -0.031 (random 30: -0.022, the same within seed
noise); 100 and 300 most harmful raised it (+0.004, +0.016) while random removal lowered it.
"""

import ml_collections

from regularity_jax.training import default_config


def base_config():
  b = default_config()
  b.dataset = "mnist"
  b.train_subset = 3000
  b.test_subset = 200
  b.model = "mlp"
  b.model_kwargs.hidden = (768, 768, 768)
  b.model_kwargs.use_bias = False
  b.turnover.enabled = True
  b.turnover.rate = 0.5
  b.turnover.influence_targets = "test"
  b.optimizer = "sgd"
  b.learning_rate = 0.01
  b.momentum = 0.9
  b.weight_decay = 0.01
  b.batch_size = 32
  b.eval_batch_size = 500
  b.num_epochs = 40
  b.eval_every = 1
  b.checkpoint_every = 40
  b.progress_bar = False
  b.plots = False
  return b


def get_config(arg: str = ""):
  c = ml_collections.ConfigDict()
  c.study = "turnover_influence"
  c.mnist_dir = "../shared/data/mnist"
  c.seeds = (0, 1)                 # scoring runs (each with its own influence)
  c.retrain_seeds = (0, 1, 2)      # retraining of every reduced set
  c.ks = (10, 30, 100, 300)
  c.removals = ("harmful", "random", "helpful")
  c.retrain_eval_every = 0         # 0: evaluate the retrained runs at the last epoch only
  c.base = base_config()
  if arg == "cpu":
    c.seeds = (0,)
    c.retrain_seeds = (0, 1)
    c.ks = (30, 100, 300)
    c.removals = ("harmful", "random")
  elif arg == "smoke":
    c.seeds = (0,)
    c.retrain_seeds = (0,)
    c.ks = (30,)
    c.removals = ("harmful", "random")
    c.base.train_subset, c.base.test_subset = 300, 50
    c.base.model_kwargs.hidden = (128, 128)
    c.base.num_epochs = 4
    c.base.checkpoint_every = 4
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '', 'cpu' or 'smoke'")
  return c
