"""Label and image corruptions of the training split (idea E, Hu et al. 2021).

`corrupt(dataset, kind, fraction, seed)` corrupts exactly
`round(fraction * N)` training examples; the test split is never touched.

Randomness is keyed by (seed, example id), not by position: whether example
`i` is selected, its noisy label, its pixel permutation and its noise image
depend only on `seed` and `i`. So the same example is corrupted the same way
at every subset size, and with one seed the examples corrupted at a smaller
fraction are among those corrupted at a larger one (selection keeps the
`round(fraction * N)` examples with the smallest per-id random score).

Kinds:
  none: nothing changes.
  symmetric: the label becomes one of the OTHER C - 1 classes, uniformly.
  pair: the label y becomes (y + 1) % C.
  random_labels: the label is drawn uniformly from ALL C classes, so it may
    equal the old one; the example still counts as corrupted.
  shuffled_pixels: the pixel positions (H * W, or the length of a 1-D signal)
    are permuted, the same permutation for every channel of an image. With
    `pixel_permutation="per_example"` (default) each selected image gets its
    own permutation; with "fixed" all selected images share one, as in Zhang
    et al. 2017 ("Understanding deep learning requires rethinking
    generalization").
  gaussian_images: the image is replaced by Gaussian noise with the
    per-channel mean and std of the (normalized) training images.

Label corruptions start from the current labels and image corruptions from the
current images, so corruptions compose; `original_labels` always keeps the
clean labels and `corrupted` accumulates.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from regularity_jax.data import normalization
from regularity_jax.data.types import DataError, Dataset, Split

CORRUPTIONS = ("none", "symmetric", "pair", "random_labels",
               "shuffled_pixels", "gaussian_images")
PIXEL_PERMUTATIONS = ("per_example", "fixed")

# Independent random streams of one seed.
_SELECT, _LABEL, _PERMUTE, _NOISE, _FIXED_PERMUTE = range(5)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def corrupt(dataset: Dataset, kind: str, fraction: float, seed: int, *,
            pixel_permutation: str = "per_example") -> Dataset:
  """Corrupts a seeded random `fraction` of the training examples.

  Args:
    dataset: the dataset; only `dataset.train` changes.
    kind: one of `CORRUPTIONS` (see the module docstring).
    fraction: share of training examples to corrupt, in [0, 1]; exactly
      `round(fraction * N)` examples are corrupted.
    seed: non-negative integer; the result is a function of (seed, ids).
    pixel_permutation: for "shuffled_pixels", "per_example" or "fixed".

  Returns:
    The dataset with a corrupted train split: `labels` i32[N] and `images`
    f32[N, ...] changed where `corrupted` bool[N] is newly True; `ids` and
    `original_labels` unchanged. `none` or a zero count returns `dataset`
    itself.

  Raises:
    DataError: unknown kind or pixel_permutation, fraction outside [0, 1], a
      negative seed, or label noise on a dataset with one class.
  """
  if kind not in CORRUPTIONS:
    raise DataError(f"unknown corruption {kind!r}: choose one of "
                    f"{', '.join(CORRUPTIONS)}")
  if (isinstance(fraction, bool) or not isinstance(fraction, numbers.Real)
      or not 0.0 <= fraction <= 1.0):
    raise DataError(f"corruption fraction {fraction!r} is outside [0, 1]; "
                    "pass the share of training examples to corrupt, e.g. "
                    "0.2 for 20%")
  if isinstance(seed, bool) or not isinstance(
      seed, (int, np.integer)) or seed < 0:
    raise DataError(f"corruption seed {seed!r} is not a non-negative "
                    "integer; pass e.g. seed=0")
  if pixel_permutation not in PIXEL_PERMUTATIONS:
    raise DataError(f"unknown pixel_permutation {pixel_permutation!r}: "
                    f"choose one of {', '.join(PIXEL_PERMUTATIONS)}")
  train = dataset.train
  count = int(round(fraction * len(train)))
  if kind == "none" or count == 0:
    return dataset
  seed = int(seed)
  selected = _select(seed, train.ids, count)
  labels, images = train.labels, train.images
  if kind in ("symmetric", "pair", "random_labels"):
    labels = labels.copy()
    labels[selected] = _noisy_labels(kind, seed, train.ids[selected],
                                     labels[selected], dataset.num_classes)
  elif kind == "shuffled_pixels":
    images = images.copy()
    images[selected] = _shuffle_pixels(seed, train.ids[selected],
                                       images[selected], pixel_permutation)
  else:  # gaussian_images
    images = images.copy()
    mean, std = normalization.channel_stats(train.images)
    images[selected] = _noise_images(seed, train.ids[selected],
                                     images.shape[1:], mean, std)
  corrupted = train.corrupted.copy()
  corrupted[selected] = True
  new_train = Split(images=images, labels=labels.astype(np.int32),
                    ids=train.ids, original_labels=train.original_labels,
                    corrupted=corrupted)
  return dataclasses.replace(dataset, train=new_train)


def _mix(x: np.ndarray) -> np.ndarray:
  """splitmix64's finalizer: a bijective, well-mixing hash of u64 values."""
  x = x.astype(np.uint64)
  x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
  x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
  return x ^ (x >> np.uint64(31))


def uniform_by_id(seed: int, stream: int, ids: np.ndarray) -> np.ndarray:
  """f64[len(ids)] in [0, 1), one independent draw per (seed, stream, id)."""
  key = _mix(np.array([seed], np.uint64) * _GOLDEN + np.uint64(stream))
  bits = _mix(key ^ _mix(np.asarray(ids, np.uint64) + _GOLDEN))
  return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _select(seed: int, ids: np.ndarray, count: int) -> np.ndarray:
  """i64[count] sorted rows: those with the smallest per-id scores."""
  scores = uniform_by_id(seed, _SELECT, ids)
  return np.sort(np.argsort(scores, kind="stable")[:count])


def _noisy_labels(kind: str, seed: int, ids: np.ndarray, labels: np.ndarray,
                  num_classes: int) -> np.ndarray:
  if kind == "pair":
    return (labels + 1) % num_classes
  u = uniform_by_id(seed, _LABEL, ids)
  if kind == "random_labels":
    return np.minimum(u * num_classes, num_classes - 1).astype(labels.dtype)
  if num_classes < 2:
    raise DataError("symmetric label noise needs at least 2 classes; use "
                    "another corruption kind for this dataset")
  offset = 1 + np.minimum(u * (num_classes - 1), num_classes - 2).astype(
      labels.dtype)
  return (labels + offset) % num_classes


def _shuffle_pixels(seed: int, ids: np.ndarray, images: np.ndarray,
                    mode: str) -> np.ndarray:
  """Permutes the positions of f32[M, *spatial, C] images, channels alike."""
  m, channels = len(images), images.shape[-1]
  flat = images.reshape(m, -1, channels)
  positions = flat.shape[1]
  if mode == "fixed":
    perm = np.random.default_rng([seed, _FIXED_PERMUTE]).permutation(positions)
    return flat[:, perm].reshape(images.shape)
  out = np.empty_like(flat)
  for row, example_id in enumerate(ids):
    rng = np.random.default_rng([seed, _PERMUTE, int(example_id)])
    out[row] = flat[row, rng.permutation(positions)]
  return out.reshape(images.shape)


def _noise_images(seed: int, ids: np.ndarray, shape: tuple[int, ...],
                  mean: np.ndarray, std: np.ndarray) -> np.ndarray:
  """f32[M, *shape] Gaussian images with per-channel `mean` and `std`."""
  out = np.empty((len(ids),) + tuple(shape), np.float32)
  for row, example_id in enumerate(ids):
    rng = np.random.default_rng([seed, _NOISE, int(example_id)])
    out[row] = rng.standard_normal(shape) * std + mean
  return out
