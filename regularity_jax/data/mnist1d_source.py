"""MNIST-1D (Greydanus 2020), generated locally with the `mnist1d` package.

No download: `mnist1d.data.make_dataset` builds the examples from ten
templates. With `get_dataset_args()` defaults (seed 42, 5000 samples, 80%
train) that is 4000 train and 1000 test sequences of length 40, already
standardized by the package (global mean 0, std 1).
"""

from __future__ import annotations

import functools
import random

import numpy as np

from regularity_jax.data.raw import RawData, in_memory
from regularity_jax.data.types import DataError


@functools.lru_cache(maxsize=4)
def generate_mnist1d(seed: int = 42, num_samples: int = 5000) -> RawData:
  """Generates MNIST-1D in the package's own order (memoized: ~1 s, 1.6 MB).

  `make_dataset` reseeds Python's and numpy's global random state; this
  restores both afterwards, so generating leaves callers' randomness alone.

  Args:
    seed: the package's generation seed; 42 is the published dataset's.
    num_samples: examples in total, 80% of them train.

  Returns:
    The `RawData`, images f64[N, 40, 1], labels int[N]; callers must not
    modify its arrays (they are shared between calls).
  """
  try:
    # Imported here: the package is optional, and only mnist1d needs it.
    from mnist1d import data as mnist1d_data  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise DataError("generating mnist1d needs the mnist1d package, which is "
                    "not installed; pip install mnist1d, or pass "
                    "--config.data_dir=DIR holding mnist1d.npz") from e
  args = mnist1d_data.get_dataset_args()
  args.seed = seed
  args.num_samples = num_samples
  numpy_state, python_state = np.random.get_state(), random.getstate()
  try:
    arrays = mnist1d_data.make_dataset(args)
  finally:
    np.random.set_state(numpy_state)
    random.setstate(python_state)
  raw = RawData(
      train=in_memory(arrays["x"], arrays["y"], split="train",
                      where="mnist1d"),
      test=in_memory(arrays["x_test"], arrays["y_test"], split="test",
                     where="mnist1d"),
      source="generated:mnist1d")
  for split in (raw.train, raw.test):
    split.images.flags.writeable = False
    split.labels.flags.writeable = False
  return raw
