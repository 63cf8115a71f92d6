"""regularity_jax: per-example regularity and difficulty signals for JAX training.

Subpackages are independent leaves except `training`, which composes them:

* `regularity_jax.metrics`: pure per-example statistic kernels (init/update/summarize).
* `regularity_jax.data`: datasets by name with stable example ids, corruptions.
* `regularity_jax.models`: Flax NNX models by name.
* `regularity_jax.training`: sharded jitted train/eval steps and the training loop.
* `regularity_jax.report`: report.html and the PNG grids of a run directory.
"""

__version__ = "0.1.0"
