"""Permuted datasets (Toneva et al.'s permuted MNIST) against a slow per-pixel NumPy loop."""

import pathlib

import numpy as np
import pytest

from regularity_jax import data
from regularity_jax.data import permutation
from regularity_jax.training import setup
from tests import engine_fixtures

MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """u8 images of 3 channels (so that channels must move alike) and the raw arrays."""
  root = tmp_path_factory.mktemp("perm")
  rng = np.random.default_rng(1)
  x_train = rng.integers(0, 256, (30, 4, 5, 3), dtype=np.uint8)
  x_test = rng.integers(0, 256, (10, 4, 5, 3), dtype=np.uint8)
  np.savez(root / "tiny.npz", x_train=x_train, y_train=np.arange(30) % 10, x_test=x_test,
           y_test=np.arange(10) % 10)
  return root, x_train, x_test


def _slow_permuted_normalized(raw_train, raw_test, indices):
  """Every pixel moved one at a time, then normalized with stats of the permuted train split."""
  out = []
  for raw in (raw_train, raw_test):
    n, h, w, c = raw.shape
    moved = np.zeros(raw.shape, np.float64)
    for i in range(n):
      for p in range(h * w):
        src = int(indices[p])
        for ch in range(c):
          moved[i, p // w, p % w, ch] = raw[i, src // w, src % w, ch] / 255.0
    out.append(moved)
  mean = out[0].mean(axis=(0, 1, 2))
  std = out[0].std(axis=(0, 1, 2))
  return [(m - mean) / std for m in out], mean, std


class TestPixelPermutation:

  def test_a_bijection_fixed_by_its_seed(self):
    perm = permutation.pixel_permutation(0, 784)
    np.testing.assert_array_equal(np.sort(perm.indices), np.arange(784))
    again = permutation.pixel_permutation(0, 784)
    np.testing.assert_array_equal(again.indices, perm.indices)
    assert again.sha256 == perm.sha256 and len(perm.sha256) == 64
    other = permutation.pixel_permutation(1, 784)
    assert other.sha256 != perm.sha256
    assert (other.indices != perm.indices).mean() > 0.9
    assert perm.describe() == {"seed": 0, "sha256": perm.sha256}

  def test_bad_seed_and_shape_refused(self):
    with pytest.raises(data.DataError, match="not a non-negative integer.*permute_pixels.seed"):
      permutation.pixel_permutation(-1, 10)
    with pytest.raises(data.DataError, match="784 positions applied to images of 9"):
      permutation.pixel_permutation(0, 784).apply(np.zeros((2, 3, 3, 1)))


class TestLoaded:

  def test_against_plain_implementation(self, tiny):
    root, x_train, x_test = tiny
    ds = data.load_dataset("cifar10", root, permute_pixels_seed=5)  # an npz loads for any name
    perm = ds.pixel_permutation
    assert perm.seed == 5 and perm.sha256 == permutation.pixel_permutation(5, 20).sha256
    (train, test), mean, std = _slow_permuted_normalized(x_train, x_test, perm.indices)
    np.testing.assert_allclose(ds.train.images, train, atol=1e-5)
    np.testing.assert_allclose(ds.test.images, test, atol=1e-5)  # the same permutation
    np.testing.assert_allclose(ds.pixel_mean, mean, rtol=1e-6)   # stats of the permuted split (of f32 pixels)
    np.testing.assert_allclose(ds.pixel_std, std, rtol=1e-6)

  def test_subsets_keep_the_same_pixels(self, tiny):
    root, *_ = tiny
    full = data.load_dataset("cifar10", root, permute_pixels_seed=5)
    sub = data.load_dataset("cifar10", root, permute_pixels_seed=5, train_subset=10)
    np.testing.assert_array_equal(sub.train.images, full.train.images[sub.train.ids])

  def test_unpermuted_load_is_unchanged(self, tiny):
    root, x_train, _ = tiny
    ds = data.load_dataset("cifar10", root)
    assert ds.pixel_permutation is None
    plain = x_train / 255.0
    np.testing.assert_allclose(ds.train.images, (plain - plain.mean((0, 1, 2))) /
                               plain.std((0, 1, 2)), atol=1e-5)

  @pytest.mark.skipif(not MNIST.is_dir(), reason="needs ../shared/data/mnist")
  def test_permuted_mnist(self):
    plain = data.load_dataset("mnist", MNIST, train_subset=500, test_subset=200)
    permuted = data.load_dataset("mnist", MNIST, train_subset=500, test_subset=200,
                                 permute_pixels_seed=0)
    idx = permuted.pixel_permutation.indices
    assert len(idx) == 784
    for a, b in ((plain.train, permuted.train), (plain.test, permuted.test)):
      np.testing.assert_array_equal(a.ids, b.ids)
      np.testing.assert_array_equal(a.labels, b.labels)
      # Per-channel stats over every pixel do not move: the same normalized pixels, moved.
      np.testing.assert_allclose(b.images.reshape(len(b), -1), a.images.reshape(len(a), -1)[:, idx],
                                 atol=1e-6)
    assert not np.allclose(plain.train.images, permuted.train.images)


def test_config_permutes_and_records(tmp_path):
  engine_fixtures.write_tiny_npz(tmp_path)
  config = engine_fixtures.tiny_config(tmp_path, **{"permute_pixels.enabled": True,
                                                    "permute_pixels.seed": 2})
  ds = setup.load_data(config)
  assert ds.pixel_permutation.seed == 2
  assert setup.permute_pixels_seed({"permute_pixels": {"enabled": False, "seed": 2}}) is None
  assert setup.permute_pixels_seed({}) is None  # configs of runs older than the field
