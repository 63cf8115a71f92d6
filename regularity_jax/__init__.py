"""regularity_jax: per-example regularity and difficulty signals for JAX training.

Subpackages are independent leaves except `training`, which composes them:

* `regularity_jax.metrics`: pure per-example statistic kernels (init/update/summarize).
* `regularity_jax.data`: datasets by name with stable example ids, corruptions.
* `regularity_jax.models`: Flax NNX models by name.
* `regularity_jax.training`: sharded jitted train/eval steps and the training loop.
* `regularity_jax.report`: report.html and the PNG grids of a run directory.
* `regularity_jax.Recorder` (`recorder`): a run directory from your own JAX loop's trackers.
* `regularity_jax.logs`: per-example logs from any framework (NumPy only), scored by
  `python -m regularity_jax.score_logs`.

Nothing is imported here: `regularity_jax.logs` loads without JAX.
"""

__version__ = "0.1.0"


def __getattr__(name):
  if name in ("Recorder", "RecorderError"):
    from regularity_jax import recorder  # pylint: disable=g-import-not-at-top
    return getattr(recorder, name)
  raise AttributeError(f"module 'regularity_jax' has no attribute {name!r}")
