r"""Prioritization under noise (idea E, Hu et al. 2021): uniform vs Selective-Backprop vs
loss-based importance sampling vs InfoBatch vs the noise-aware InfoBatch vs RHO-LOSS vs uniform
on the AUM-filtered set, on clean data and under 25% / 50% random labels, shuffled pixels and
Gaussian-noise images. Every method trains on the same 80% of the training subset (the base
config's holdout: RHO-LOSS's irreducible-loss model trains on the other 20%).

  # the CPU-sized version whose report is in experiments/results/selection/noise_prioritization/:
  JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache python -m experiments.study \
      --config=experiments/studies/noise_prioritization/config.py:cpu \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/noise_prioritization_cpu
  # smoke (4 methods, clean + 50% random labels, 2,000 examples; a few minutes on 2 CPU cores):
  python -m experiments.study --config=experiments/studies/noise_prioritization/config.py:smoke \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/noise_prioritization_smoke
  # full size (Toneva's MNIST CNN, 60,000 examples, 30 epochs, 3 seeds; for an accelerator):
  python -m experiments.study --config=experiments/studies/noise_prioritization/config.py \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/noise_prioritization

Every sub-run is experiments/configs/noise_prioritization.py (a plain training config for
experiments.main) with --config.prioritization and --config.corruption.* set by the study;
`--config.base.<field>` changes them all. experiments/studies/noise_prioritization/study.py defines
every number of the report (time to target in epochs, optimizer steps, examples
backpropagated / forwarded and seconds; final accuracy; the share of backprops spent on
corrupted examples).

Hardware and result of `:cpu` (2 shared Intel Xeon CPU cores, jax 0.10.2, 3 seeds,
MNIST 8,000 train / 2,000 test, MLP 784-256-10, 15 epochs; 189 runs, 27.3 min wall,
measured 2026-12-02): see experiments/results/selection/noise_prioritization/report.md.
Expected (Hu et al. 2021): the loss-based methods speed up clean training (speed-up > 1 in
backprops to the target) and lose that advantage, or final accuracy, with noise.
"""

import ml_collections

from regularity_jax.configs import noise_prioritization


def get_config(arg: str = ""):
  c = ml_collections.ConfigDict()
  c.study = "noise_prioritization"
  c.dataset = "mnist"
  c.mnist_dir = "../shared/data/mnist"
  c.fashion_mnist_dir = "../shared/data/fashion_mnist"
  c.methods = ("uniform", "selective_backprop", "importance", "infobatch", "noise_aware",
               "rho_loss", "aum_filtered")
  c.rho_epochs = 0  # 0 = base.num_epochs x rho_candidates (uniform's backprop budget)
  c.include_clean = True
  c.noise_kinds = ("random_labels", "shuffled_pixels", "gaussian_images")
  c.noise_fractions = (0.25, 0.5)
  c.seeds = (0, 1, 2)
  c.target_accuracy = 0.0     # > 0: an absolute target test accuracy for every condition
  c.target_relative = 0.99    # else: this share of the uniform run's best, per condition/seed
  c.other_targets_relative = (0.95,)  # the speed-up claim repeated at these shares
  c.noise_aware_matches_corruption = True
  c.notes = ()
  b = noise_prioritization.get_config("smoke" if arg == "smoke" else "")
  b.progress_bar = False
  b.plots = False
  c.base = b
  if arg == "cpu":
    b.train_subset, b.test_subset = 8000, 2000
    b.model = "mlp"
    b.model_kwargs = ml_collections.ConfigDict({"hidden": (256,)})
    b.num_epochs = b.checkpoint_every = 15
    c.notes = ("CPU-sized: MNIST subset, MLP, 15 epochs, on 2 shared CPU cores with two other "
               "jobs running, so seconds are noisy; examples backpropagated are the "
               "hardware-independent cost.",)
  elif arg == "smoke":
    c.methods = ("uniform", "selective_backprop", "rho_loss", "aum_filtered")
    c.noise_kinds = ("random_labels",)
    c.noise_fractions = (0.5,)
    c.seeds = (0,)
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '', 'cpu' or 'smoke'")
  return c
