r"""Study B1 (margins, idea B): does the margin-distribution AUC track generalization?

  # the CPU-sized version whose report is in experiments/results/margins/auc_generalization/:
  python -m experiments.study --config=experiments/studies/margins_auc_generalization/config.py:cpu \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/margins_auc_generalization_cpu
  # smoke (4 runs on 2,000 examples; under 2 minutes on 2 CPU cores):
  python -m experiments.study --config=experiments/studies/margins_auc_generalization/config.py:smoke \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/margins_auc_generalization_smoke
  # full size (all 60,000 MNIST examples, 3 widths, 3 seeds = 54 runs; for an accelerator):
  python -m experiments.study --config=experiments/studies/margins_auc_generalization/config.py \
      --config.mnist_dir=../shared/data/mnist --workdir=runs/margins_auc_generalization

An MLP is trained on MNIST for every combination of symmetric label noise (0, 20, 50%), hidden
width and weight decay; the report gives each run's final normalized training-margin AUC, test
accuracy and generalization gap, Kendall's tau-b (numpy) between them with permutation p-values,
and a scatter plot (experiments/studies/margins_auc_generalization/study.py defines every number).
`mnist_dir` holds the IDX files ('' loads through tensorflow-datasets); `--config.dataset`
picks another dataset (its `<dataset>_dir` field, e.g. fashion_mnist_dir).

Protocol of `base` (each setting, its value, and where it comes from; tests/test_protocols.py
pins them):
  base.margins.normalizer    'frobenius_product'  normalized margin = logit margin / product of
                                                 the layers' Frobenius norms (Banburski et al. 2021, arXiv 2107.10199)
  base.model                 'mlp'               project choice: an MLP (the paper's networks
                                                 and data are not reproduced here)
  base.learning_rate         0.1                 project choice (SGD, momentum 0.9, batch 128)
The AUC is that of the sorted normalized training margins (`metrics.margin_distribution`).

Hardware and result of `:cpu` (2 Intel Xeon CPU cores shared with other jobs, jax 0.10.2,
seed 0, 12 runs on 2,000 train / 10,000 test examples, 60 epochs): see
experiments/results/margins/auc_generalization/report.md.
Expected (Banburski et al. 2021): a larger margin AUC goes with higher test accuracy
(tau > 0) and a smaller gap (tau < 0).
"""

import ml_collections

from regularity_jax.training import default_config


def base_config():
  b = default_config()
  b.dataset = "mnist"
  b.model = "mlp"
  b.model_kwargs.hidden = (256,)
  b.optimizer = "sgd"
  b.learning_rate = 0.1
  b.momentum = 0.9
  b.batch_size = 128
  b.margins.normalizer = "frobenius_product"
  b.eval_batch_size = 2000
  b.num_epochs = 30
  b.eval_every = 1
  b.checkpoint_every = 30
  b.tracking.kernels = ("margins",)  # the margins are all this study reads
  b.progress_bar = False
  b.plots = False
  return b


def get_config(arg: str = ""):
  c = ml_collections.ConfigDict()
  c.study = "margins_auc_generalization"
  c.dataset = "mnist"
  c.mnist_dir = "../shared/data/mnist"
  c.fashion_mnist_dir = "../shared/data/fashion_mnist"
  c.noise_kind = "symmetric"
  c.noise_fractions = (0.0, 0.2, 0.5)
  c.width_field = "model_kwargs.hidden"  # the base field each entry of `widths` is written to
  c.widths = ((128,), (512,), (2048,))
  c.weight_decays = (0.0, 5e-4)
  c.seeds = (0, 1, 2)
  c.num_permutations = 10000  # of the permutation p-values of Kendall's tau
  c.base = base_config()
  if arg == "cpu":
    # 2,000 examples and 60 epochs: long enough for the noisy runs to (nearly) fit their
    # labels, as the networks compared by Banburski et al. do; 15 epochs on 10,000 left the
    # 50%-noise runs at 45-60% training accuracy, where the "gap" is underfitting.
    c.widths = ((64,), (512,))
    c.weight_decays = (0.0, 1e-3)
    c.seeds = (0,)
    c.base.train_subset, c.base.test_subset = 2000, 0
    c.base.num_epochs = 60
    c.base.eval_every = 10
    c.base.checkpoint_every = 60
  elif arg == "smoke":
    c.noise_fractions = (0.0, 0.5)
    c.widths = ((32,), (128,))
    c.weight_decays = (0.0,)
    c.seeds = (0,)
    c.num_permutations = 1000
    c.base.train_subset, c.base.test_subset = 2000, 1000
    c.base.num_epochs = 4
    c.base.checkpoint_every = 4
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '', 'cpu' or 'smoke'")
  return c
