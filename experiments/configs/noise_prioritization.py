r"""One training run of the prioritization-under-noise experiment (idea E, Hu et al. 2021).

  python -m experiments.main --config=experiments/configs/noise_prioritization.py \
      --config.data_dir=../shared/data/mnist \
      --config.prioritization=selective_backprop \
      --config.corruption.kind=random_labels --config.corruption.fraction=0.25 \
      --workdir=runs/noise_prio_sb_rl25
  # smoke (2,000 examples, 4 epochs; under 2 minutes on 2 CPU cores):
  python -m experiments.main --config=experiments/configs/noise_prioritization.py:smoke \
      --config.data_dir=../shared/data/mnist \
      --config.prioritization=infobatch --workdir=runs/noise_prio_smoke

The method is set with --config.prioritization=KIND
(uniform | selective_backprop | importance | infobatch | noise_aware) and its parameters with
--config.prioritization_options.<field> (sb_beta, sb_history, candidates, is_smoothing, is_reweight,
infobatch_ratio, infobatch_anneal, noise_score, noise_fraction, noise_warmup;
regularity_jax/training/prioritization.py documents each). The noise is
--config.corruption.kind (none | random_labels | shuffled_pixels | gaussian_images | ...) on
--config.corruption.fraction of the training set. The test split is evaluated every epoch
(eval_every=1), and every record of metrics.jsonl carries examples_backpropagated,
examples_forwarded and train_time_s of that epoch, so the time to a target accuracy is
resolved per epoch. The study sweeping methods x noise is
experiments/configs/noise_prioritization_study.py.

Setup: Toneva et al.'s MNIST CNN and optimizer (SGD lr 0.01 momentum 0.5, batch 64), 30
epochs, all 60,000 examples; for an accelerator (a CPU manages the `:smoke` size and the MLP
of the study's `:cpu` variant). Expected (Hu et al. 2021): on clean data Selective-Backprop
and loss-based importance sampling reach a given accuracy with fewer backpropagated examples
than uniform sampling; with 25-50% corrupted examples that advantage shrinks or reverses.
"""

from experiments.configs import mnist_toneva


def get_config(arg: str = ""):
  c = mnist_toneva.get_config()
  c.num_epochs = 30
  c.eval_every = 1
  c.checkpoint_every = 10
  c.prioritization = "uniform"
  if arg == "smoke":
    c.train_subset, c.test_subset = 2000, 500
    c.model = "mlp"
    c.model_kwargs.hidden = (128,)
    del c.model_kwargs["dropout"]
    c.num_epochs = 4
    c.checkpoint_every = 4
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '' or 'smoke'")
  return c
