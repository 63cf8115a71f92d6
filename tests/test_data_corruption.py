"""corrupt(): exact counts, each kind's contract, id-keyed randomness, errors."""

import dataclasses

import numpy as np
import pytest

from regularity_jax import data
from regularity_jax.data import DataError

NUM_CLASSES = 5


def make_dataset(n=400, shape=(4, 3, 2), seed=0, id_stride=3):
  """A normalized-looking dataset whose ids are not 0..N-1 (like a subset).

  Channel c of every image is `base + 1000 * c`, so a permutation of pixel
  positions can be read back from channel 0 and checked on the others.
  """
  rng = np.random.default_rng(seed)
  base = rng.permutation(n * int(np.prod(shape[:-1]))).reshape(
      (n,) + shape[:-1]).astype(np.float32)
  images = np.stack([base + 1000 * c for c in range(shape[-1])], axis=-1)
  labels = np.arange(n) % NUM_CLASSES
  ids = np.arange(n) * id_stride + 7
  train = data.Split.clean(images, labels, ids)
  test = data.Split.clean(images[:10].copy(), labels[:10])
  return data.Dataset(name="synthetic", train=train, test=test,
                      num_classes=NUM_CLASSES,
                      class_names=tuple("abcde"), source="test")


def subset_of(dataset, rows):
  t = dataset.train
  train = data.Split(images=t.images[rows], labels=t.labels[rows],
                     ids=t.ids[rows], original_labels=t.original_labels[rows],
                     corrupted=t.corrupted[rows])
  return dataclasses.replace(dataset, train=train)


class TestCommon:

  @pytest.mark.parametrize("kind", data.CORRUPTIONS[1:])
  @pytest.mark.parametrize("fraction", [0.1, 0.25, 0.333, 0.5, 1.0])
  def test_exact_count_and_invariants(self, kind, fraction):
    ds = make_dataset()
    before = ds.train.images.copy(), ds.train.labels.copy()
    out = data.corrupt(ds, kind, fraction, seed=1)
    t = out.train
    assert t.corrupted.sum() == round(fraction * len(ds.train))
    assert t.images.dtype == np.float32 and t.labels.dtype == np.int32
    np.testing.assert_array_equal(t.ids, ds.train.ids)
    np.testing.assert_array_equal(t.original_labels, ds.train.labels)
    assert out.test is ds.test
    # Untouched examples keep images and labels; the input is not modified.
    clean = ~t.corrupted
    np.testing.assert_array_equal(t.images[clean], ds.train.images[clean])
    np.testing.assert_array_equal(t.labels[clean], ds.train.labels[clean])
    np.testing.assert_array_equal(ds.train.images, before[0])
    np.testing.assert_array_equal(ds.train.labels, before[1])
    assert not ds.train.corrupted.any()

  @pytest.mark.parametrize("kind", data.CORRUPTIONS)
  def test_deterministic(self, kind):
    ds = make_dataset()
    a = data.corrupt(ds, kind, 0.3, seed=5)
    b = data.corrupt(ds, kind, 0.3, seed=5)
    for field in ("images", "labels", "corrupted"):
      np.testing.assert_array_equal(getattr(a.train, field),
                                    getattr(b.train, field))
    if kind != "none":
      c = data.corrupt(ds, kind, 0.3, seed=6)
      assert not np.array_equal(a.train.corrupted, c.train.corrupted)

  def test_none_and_zero_return_input(self):
    ds = make_dataset()
    assert data.corrupt(ds, "none", 0.5, seed=0) is ds
    assert data.corrupt(ds, "symmetric", 0.0, seed=0) is ds
    assert data.corrupt(ds, "symmetric", 0.001, seed=0) is ds  # rounds to 0

  def test_keyed_by_id(self):
    """Same example, same fate, whatever the subset; fractions nest."""
    ds = make_dataset()
    low = data.corrupt(ds, "random_labels", 0.2, seed=3).train
    high = data.corrupt(ds, "random_labels", 0.4, seed=3).train
    assert np.all(high.corrupted[low.corrupted])
    np.testing.assert_array_equal(low.labels[low.corrupted],
                                  high.labels[low.corrupted])
    rows = np.arange(0, len(ds.train), 2)
    sub = data.corrupt(subset_of(ds, rows), "shuffled_pixels", 0.4,
                       seed=3).train
    full = data.corrupt(ds, "shuffled_pixels", 0.4, seed=3).train
    both = sub.corrupted & full.corrupted[rows]
    assert both.sum() > 10
    np.testing.assert_array_equal(sub.images[both], full.images[rows][both])

  def test_composes(self):
    ds = make_dataset()
    once = data.corrupt(ds, "pair", 0.2, seed=0)
    twice = data.corrupt(once, "gaussian_images", 0.2, seed=1)
    np.testing.assert_array_equal(twice.train.original_labels, ds.train.labels)
    assert np.all(twice.train.corrupted[once.train.corrupted])
    assert twice.train.corrupted.sum() > once.train.corrupted.sum()


class TestLabelNoise:

  def test_symmetric_never_keeps_label_and_is_uniform(self):
    ds = make_dataset(n=5000, shape=(1, 1, 1))
    t = data.corrupt(ds, "symmetric", 1.0, seed=0).train
    assert np.all(t.labels != t.original_labels)
    assert t.labels.min() >= 0 and t.labels.max() < NUM_CLASSES
    offsets = (t.labels - t.original_labels) % NUM_CLASSES
    counts = np.bincount(offsets, minlength=NUM_CLASSES)
    assert counts[0] == 0
    # 4 equally likely offsets of 5000: each 1250 +- 5 sigma (~31).
    assert np.all(np.abs(counts[1:] - 1250) < 160), counts

  def test_pair_mapping(self):
    ds = make_dataset()
    t = data.corrupt(ds, "pair", 0.5, seed=2).train
    np.testing.assert_array_equal(
        t.labels[t.corrupted], (t.original_labels[t.corrupted] + 1) % 5)

  def test_random_labels_cover_all_classes(self):
    ds = make_dataset(n=5000, shape=(1, 1, 1))
    t = data.corrupt(ds, "random_labels", 1.0, seed=0).train
    assert t.corrupted.all()
    counts = np.bincount(t.labels, minlength=NUM_CLASSES)
    assert np.all(np.abs(counts - 1000) < 150), counts
    kept = np.mean(t.labels == t.original_labels)
    assert 0.15 < kept < 0.25  # 1/C of them keep their label by chance


class TestImageNoise:

  @pytest.mark.parametrize("mode", ["per_example", "fixed"])
  def test_shuffled_pixels_permutation(self, mode):
    ds = make_dataset()
    t = data.corrupt(ds, "shuffled_pixels", 0.5, seed=4,
                     pixel_permutation=mode).train
    np.testing.assert_array_equal(t.labels, ds.train.labels)
    perms = []
    for k in np.flatnonzero(t.corrupted):
      before = ds.train.images[k].reshape(-1, 2)
      after = t.images[k].reshape(-1, 2)
      # Values of channel 0 are unique, so they identify the permutation.
      order = np.argsort(before[:, 0])
      perm = order[np.searchsorted(before[order, 0], after[:, 0])]
      np.testing.assert_array_equal(after, before[perm])  # same on channel 1
      np.testing.assert_array_equal(np.sort(perm), np.arange(12))
      perms.append(tuple(perm))
    distinct = len(set(perms))
    if mode == "fixed":
      assert distinct == 1
    else:
      assert distinct > 0.9 * len(perms)

  def test_shuffled_pixels_1d(self):
    ds = make_dataset(shape=(40, 1))
    t = data.corrupt(ds, "shuffled_pixels", 0.3, seed=0).train
    k = np.flatnonzero(t.corrupted)[0]
    np.testing.assert_array_equal(np.sort(t.images[k].ravel()),
                                  np.sort(ds.train.images[k].ravel()))
    assert not np.array_equal(t.images[k], ds.train.images[k])

  def test_gaussian_images_stats(self):
    rng = np.random.default_rng(0)
    images = (rng.normal(size=(1000, 8, 8, 3)) * [1.0, 2.0, 0.5]
              + [0.0, 1.0, -2.0]).astype(np.float32)
    train = data.Split.clean(images, np.arange(1000) % NUM_CLASSES)
    ds = data.Dataset("g", train, train, NUM_CLASSES, tuple("abcde"), "test")
    t = data.corrupt(ds, "gaussian_images", 0.5, seed=1).train
    noise = t.images[t.corrupted]
    np.testing.assert_array_equal(t.labels, train.labels)
    np.testing.assert_allclose(noise.mean(axis=(0, 1, 2)),
                               images.mean(axis=(0, 1, 2)), atol=0.05)
    np.testing.assert_allclose(noise.std(axis=(0, 1, 2)),
                               images.std(axis=(0, 1, 2)), rtol=0.03)
    # Noise, not the original images.
    assert np.abs(np.corrcoef(noise[:, 0, 0, 0],
                              images[t.corrupted][:, 0, 0, 0])[0, 1]) < 0.15


class TestErrors:

  def test_unknown_kind(self):
    with pytest.raises(DataError) as e:
      data.corrupt(make_dataset(), "label_flip", 0.2, seed=0)
    message = str(e.value)
    assert "'label_flip'" in message and ", ".join(data.CORRUPTIONS) in message
    assert "\n" not in message

  @pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan"), True, "0.2"])
  def test_bad_fraction(self, fraction):
    with pytest.raises(DataError, match=r"outside \[0, 1\]"):
      data.corrupt(make_dataset(), "symmetric", fraction, seed=0)

  def test_bad_pixel_permutation(self):
    with pytest.raises(DataError, match="per_example, fixed"):
      data.corrupt(make_dataset(), "shuffled_pixels", 0.2, seed=0,
                   pixel_permutation="shared")

  def test_bad_seed(self):
    with pytest.raises(DataError, match="seed"):
      data.corrupt(make_dataset(), "pair", 0.2, seed=-1)
