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
(uniform | selective_backprop | importance | infobatch | noise_aware | rho_loss) and its parameters
with --config.prioritization_options.<field> (sb_beta, sb_history, candidates, is_smoothing,
is_reweight, infobatch_ratio, infobatch_anneal, noise_score, noise_fraction, noise_warmup,
rho_candidates, rho_il_model, rho_il_model_kwargs, rho_il_epochs;
regularity_jax/training/features/prioritization/ documents each). The noise is
--config.corruption.kind (none | random_labels | shuffled_pixels | gaussian_images | ...) on
--config.corruption.fraction of the training set. The test split is evaluated every epoch
(eval_every=1), and every record of metrics.jsonl carries examples_backpropagated,
examples_forwarded and train_time_s of that epoch, so the time to a target accuracy is
resolved per epoch. The study sweeping methods x noise is
experiments/studies/noise_prioritization/config.py.

Protocol (each setting, its value, and where it comes from; tests/test_protocols.py pins them):
  model                               'toneva_cnn'  Toneva et al.'s MNIST protocol
                                                    (experiments/configs/mnist_toneva.py), which
                                                    this config starts from ...
  model_kwargs.dropout                0.0           ... without dropout (their --no_dropout)
  learning_rate                       0.01          Toneva et al.'s run_mnist.py
  momentum                            0.5           Toneva et al.'s run_mnist.py
  batch_size                          64            Toneva et al.'s run_mnist.py
  num_epochs                          30            project choice (time-to-accuracy needs
                                                    no 200 epochs)
  eval_every                          1             project choice: time to target per epoch
  prioritization_options.sb_beta      1.0           Selective-Backprop (Jiang et al. 2019,
                                                    arXiv 1910.00762): beta = 1
  prioritization_options.sb_history   1024          Selective-Backprop: CDF over the last
                                                    1024 losses
  prioritization_options.infobatch_ratio   0.5      InfoBatch (Qin et al., ICLR 2024): r = 0.5
  prioritization_options.infobatch_anneal  0.875    InfoBatch: anneal at 87.5% of training
  holdout.fraction                    0.2           project choice: RHO-LOSS's irreducible-loss
                                                    model trains on this class-stratified 20%
                                                    (the paper: half of CIFAR-10's training
                                                    set); every method trains on the other 80%
  prioritization_options.rho_candidates    4        project choice (the paper: 10): with few
                                                    epochs, a tenth of an epoch per epoch is
                                                    too little on a CPU
  prioritization_options.rho_il_epochs     20       project choice (the paper: 30, AdamW)
Hu et al. 2021 (arXiv 2107.07741) compare these methods under 25% and 50% random labels,
shuffled pixels and Gaussian-noise images; their network and optimizer are not reproduced
here. For an accelerator (a CPU manages the `:smoke` size and the MLP of the study's `:cpu`
variant). Expected (Hu et al. 2021): on clean data Selective-Backprop and loss-based
importance sampling reach a given accuracy with fewer backpropagated examples than uniform
sampling; with 25-50% corrupted examples that advantage shrinks or reverses.
"""

import ml_collections

from regularity_jax.configs import mnist_toneva


def get_config(arg: str = ""):
  c = mnist_toneva.get_config()
  c.num_epochs = 30
  c.eval_every = 1
  c.checkpoint_every = 10
  c.prioritization = "uniform"
  c.holdout.fraction = 0.2
  c.prioritization_options.rho_candidates = 4
  c.prioritization_options.rho_il_epochs = 20
  if arg == "smoke":
    c.train_subset, c.test_subset = 2000, 500
    c.model = "mlp"
    c.model_kwargs = ml_collections.ConfigDict({"hidden": (128,)})
    c.num_epochs = 4
    c.checkpoint_every = 4
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '' or 'smoke'")
  return c
