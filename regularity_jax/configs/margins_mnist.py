r"""MNIST with dynamic training-set reduction to the low-margin examples (Banburski et al. 2021).

  python -m experiments.main --config=experiments/configs/margins_mnist.py \
      --config.data_dir=../shared/data/mnist --workdir=runs/margins_mnist
  # CPU-sized check (5,000 training examples, 12 epochs; under 2 minutes on 2 cores):
  python -m experiments.main --config=experiments/configs/margins_mnist.py:smoke \
      --config.data_dir=../shared/data/mnist --workdir=runs/margins_mnist_smoke

Protocol (each setting, its value, and where it comes from; tests/test_protocols.py pins them):
  reduction.enabled     True                dynamic reduction of the training set (Banburski et al. 2021, arXiv 2107.10199)
  reduction.threshold   1.0                 ... once the data are separated: every training
                                            example classified correctly
  reduction.fraction    0.01                ... keeping 1% ("by more than 99%")
  reduction.by          'margin'            ... the lowest-margin ("high capacity") examples
  margins.normalizer    'frobenius_product'  normalized margin = logit margin / product of the
                                            layers' Frobenius norms (their normalization)
  model                 'mlp'               project choice: an MLP 784-256-10 (the paper's
                                            networks and data are not reproduced here)
  learning_rate         0.1                 project choice (SGD, momentum 0.9, batch 128)
  num_epochs            40                  project choice
Every evaluation (each epoch) logs the normalized training-margin AUC (`margin_auc`), its test
counterpart, 21 quantiles of the training margin distribution and `train_fraction_used`. Once
an evaluation finds every training example classified correctly, training goes on with only
the 1% of examples with the lowest margins, re-selected every epoch (project choice:
`reduction.every=1`); the kept ids of each selection are in WORKDIR/reduction/.
`--config.reduction.by=random` gives the same-size random control,
`--config.reduction.enabled=False` full training. The studies margins_reduction.py /
margins_overlap.py compare them over seeds.

Measured (`:smoke`, seed 0, 2 Intel Xeon CPU cores shared with other jobs, jax 0.10.2, 12 s):
separated at epoch 8 (test accuracy 0.9525), then 1% = 50 examples per epoch; test accuracy
0.9505 at epoch 12. The full config (all 60,000 examples) was not run here; expect separation
later and test accuracy about that of full training (about 98% for this MLP). The measured
comparison over 3 seeds at 10,000 examples: experiments/results/margins/reduction/report.md.
"""

from regularity_jax.training import default_config


def get_config(arg: str = ""):
  c = default_config()
  c.dataset = "mnist"
  c.model = "mlp"
  c.model_kwargs.hidden = (256,)
  c.num_epochs = 40
  c.batch_size = 128
  c.eval_batch_size = 2000
  c.optimizer = "sgd"
  c.learning_rate = 0.1
  c.momentum = 0.9
  c.eval_every = 1
  c.checkpoint_every = 10
  c.reduction.enabled = True
  c.reduction.fraction = 0.01
  c.reduction.threshold = 1.0
  c.reduction.every = 1
  c.reduction.by = "margin"
  c.margins.normalizer = "frobenius_product"
  if arg == "smoke":
    c.train_subset, c.test_subset = 5000, 2000
    c.num_epochs = 12
    c.checkpoint_every = 12
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use '' or 'smoke'")
  return c
