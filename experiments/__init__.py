"""The old command-line names, kept working: everything moved into the package.

  python -m experiments.main ...     = python -m regularity_jax.main ...
  python -m experiments.study ...    = python -m regularity_jax.study ...
  python -m experiments.report ...   = python -m regularity_jax.report ...
  python -m experiments.prepare_tfds = python -m regularity_jax.prepare_tfds
  experiments/configs/<name>.py      = regularity_jax/configs/<name>.py
  experiments/studies/<name>/        = regularity_jax/studies/<name>/ (config.py, study.py)
  experiments/results/               the studies' reports (stay here)
"""
