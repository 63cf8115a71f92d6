"""Permuted datasets: one fixed random permutation of the pixel positions, for every image.

Toneva et al. 2019's permuted MNIST (github mtoneva/example_forgetting, run_mnist.py
`--dataset permuted_mnist`) draws one permutation of the 784 pixels and applies it to every
training and test image. Here the permutation is `np.random.default_rng(seed)
.permutation(H * W)`, the same for every channel, applied as the source's images are read,
before the normalization statistics are computed (`registry.from_raw`); with per-channel
statistics over every pixel they are the same numbers as the unpermuted ones, and Toneva
normalizes before permuting, so both orders give the same images.

`PixelPermutation.describe()` ({"seed", "sha256"}) goes into the provenance of a run's scores,
so that scores of permuted pixels never pass for those of the original images (same ids, same
labels).

Unlike Toneva's code, whose permutation comes from the run's seed (`torch.manual_seed(seed)`
then `torch.randperm`), so that each seed trains on another permutation, the permutation seed
here is its own field: every seed of a study can share one permutation.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from regularity_jax.data.types import DataError


@dataclasses.dataclass(frozen=True, eq=False)
class PixelPermutation:
  """A fixed permutation of the pixel positions of every image.

  Attributes:
    seed: the seed it was drawn from (non-negative).
    indices: i64[P], P = the product of the spatial dims; output position p takes the pixel
      at input position indices[p] (`flat[:, indices]`, as Toneva's `x.view(-1)[perm]`).
  """

  seed: int
  indices: np.ndarray

  @property
  def sha256(self) -> str:
    """sha256 (hex) of the indices as little-endian int64: what the provenance compares."""
    return hashlib.sha256(np.asarray(self.indices, "<i8").tobytes()).hexdigest()

  def describe(self) -> dict[str, object]:
    return {"seed": int(self.seed), "sha256": self.sha256}

  def apply(self, images: np.ndarray) -> np.ndarray:
    """Permutes the positions of u8|float[N, *spatial, C] images (channels alike).

    Returns:
      An array of the same shape and dtype.
    """
    n, channels = len(images), images.shape[-1]
    flat = np.asarray(images).reshape(n, -1, channels)
    if flat.shape[1] != len(self.indices):
      raise DataError(
          f"pixel permutation of {len(self.indices)} positions applied to images of "
          f"{flat.shape[1]} positions ({images.shape[1:-1]}); permute images of one shape")
    return flat[:, self.indices].reshape(images.shape)


def pixel_permutation(seed: int, positions: int) -> PixelPermutation:
  """The permutation of `positions` pixel positions drawn from `seed`.

  Args:
    seed: non-negative integer.
    positions: H * W (784 for MNIST).

  Raises:
    DataError: a negative or non-integer seed.
  """
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
    raise DataError(f"pixel permutation seed {seed!r} is not a non-negative integer; pass "
                    "e.g. --config.permute_pixels.seed=0")
  indices = np.random.default_rng(int(seed)).permutation(int(positions)).astype(np.int64)
  return PixelPermutation(seed=int(seed), indices=indices)
