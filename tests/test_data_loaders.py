"""Dataset loaders: local formats on synthetic files, the shared real data,
subsets, mnist1d, TFDS when it is not installed (the real library: test_tfds.py), and every
user-facing error."""

import ast
import gzip
import io
import os
import pathlib
import pickle
import random
import sys
import tarfile

import numpy as np
from PIL import Image
import pytest

from regularity_jax import data
from regularity_jax.data import catalog
from regularity_jax.data import identity
from regularity_jax.data import image_folders
from regularity_jax.data import mnist1d_source
from regularity_jax.data import normalization
from regularity_jax.data import subsets
from regularity_jax.data import tfds_source
from regularity_jax.data import DataError

SHARED_DATA = pathlib.Path(os.environ.get(
    "REGULARITY_JAX_SHARED_DATA",
    pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def shared(folder):
  path = SHARED_DATA / folder
  if not path.is_dir():
    pytest.skip(f"shared data {path} not present (set "
                "REGULARITY_JAX_SHARED_DATA to the folder holding mnist/, "
                "fashion_mnist/, cifar10_jpeg_q75/)")
  return path


def raw_pixels(split, dataset):
  """Undo the normalization: f32 pixels in the source's scale."""
  return (split.images * np.float32(dataset.pixel_std)
          + np.float32(dataset.pixel_mean))


def assert_one_line_error(excinfo, *fragments):
  message = str(excinfo.value)
  assert "\n" not in message, message
  for fragment in fragments:
    assert fragment in message, message


# ---------------------------------------------------------------------------
# Synthetic files.


def write_idx(path, array):
  array = np.asarray(array, np.uint8)
  header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
      int(d).to_bytes(4, "big") for d in array.shape)
  opener = gzip.open if path.name.endswith(".gz") else open
  with opener(path, "wb") as f:
    f.write(header + array.tobytes())


def make_idx_dir(root, *, gz=True, n_train=30, n_test=10, seed=0):
  rng = np.random.default_rng(seed)
  arrays = {
      "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
      "train-labels-idx1-ubyte": np.arange(n_train) % 10,
      "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
      "t10k-labels-idx1-ubyte": np.arange(n_test) % 3,
  }
  root.mkdir(parents=True, exist_ok=True)
  for name, array in arrays.items():
    write_idx(root / (name + (".gz" if gz else "")), array)
  return {k: np.asarray(v, np.uint8) for k, v in arrays.items()}


def cifar_batches(name, rng):
  """{member: pickled bytes} of a tiny CIFAR python release."""
  if name == "cifar10":
    counts = {f"data_batch_{i}": 3 for i in range(1, 6)}
    counts["test_batch"] = 4
    label_key, num_classes = "labels", 10
    meta = {"batches.meta": {b"label_names": [n.encode() for n in
                                              catalog.INFOS[name].class_names]}}
  else:
    counts = {"train": 6, "test": 4}
    label_key, num_classes = "fine_labels", 100
    meta = {"meta": {b"fine_label_names": [
        n.encode() for n in catalog.INFOS[name].class_names]}}
  members, arrays = {}, {}
  for member, n in counts.items():
    pixels = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
    labels = rng.integers(0, num_classes, n).tolist()
    arrays[member] = (pixels, labels)
    members[member] = pickle.dumps(
        {b"data": pixels, label_key.encode(): labels, b"batch_label": b"x"},
        protocol=2)
  for member, obj in meta.items():
    members[member] = pickle.dumps(obj, protocol=2)
  return members, arrays


def write_tar(path, members):
  with tarfile.open(path, "w:gz") as tar:
    for name, payload in members.items():
      info = tarfile.TarInfo(name)
      info.size = len(payload)
      tar.addfile(info, io.BytesIO(payload))


def png_bytes(array, fmt="PNG"):
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format=fmt)
  return buffer.getvalue()


def image_tree(rng, classes, per_class, shape=(32, 32, 3)):
  """{"train/<class>/<file>": u8 image} plus the same for test."""
  tree = {}
  for split, n in (("train", per_class), ("test", 1)):
    for cls in classes:
      for i in range(n):
        tree[f"{split}/{cls}/{i:03d}.png"] = rng.integers(
            0, 256, shape).astype(np.uint8)
  return tree


def write_tree(root, tree, fmt="PNG"):
  for rel, array in tree.items():
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(array, fmt))


# ---------------------------------------------------------------------------
# IDX


class TestIdx:

  @pytest.mark.parametrize("gz", [True, False])
  def test_known_contents(self, tmp_path, gz):
    arrays = make_idx_dir(tmp_path, gz=gz)
    ds = data.load_dataset("mnist", tmp_path)
    x = arrays["train-images-idx3-ubyte"][..., None] / 255
    assert ds.example_shape == (28, 28, 1)
    assert ds.train.images.dtype == np.float32
    assert ds.train.labels.dtype == np.int32 and ds.train.ids.dtype == np.int32
    np.testing.assert_allclose(raw_pixels(ds.train, ds), x, atol=1e-6)
    np.testing.assert_array_equal(ds.train.labels,
                                  arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(ds.test.labels,
                                  arrays["t10k-labels-idx1-ubyte"])
    np.testing.assert_array_equal(ds.train.ids, np.arange(30))
    np.testing.assert_array_equal(ds.train.original_labels, ds.train.labels)
    assert not ds.train.corrupted.any()
    # Normalized with the training split's own statistics.
    np.testing.assert_allclose(ds.pixel_mean, [x.mean()], rtol=1e-6)
    np.testing.assert_allclose(ds.pixel_std, [x.std()], rtol=1e-6)
    np.testing.assert_allclose(ds.train.images.mean(), 0, atol=1e-5)
    np.testing.assert_allclose(ds.train.images.std(), 1, atol=1e-5)
    assert ds.source == f"local:{tmp_path.resolve()}"
    assert ds.class_names == tuple(str(i) for i in range(10))

  def test_incomplete(self, tmp_path):
    make_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as e:
      data.load_dataset("mnist", tmp_path)
    assert_one_line_error(e, "t10k-labels-idx1-ubyte.gz", "missing")

  def test_bad_magic(self, tmp_path):
    make_idx_dir(tmp_path)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
      f.write(b"\x01\x02\x03\x04garbage")
    with pytest.raises(DataError) as e:
      data.load_dataset("mnist", tmp_path)
    assert_one_line_error(e, "train-images-idx3-ubyte.gz", "IDX")


# ---------------------------------------------------------------------------
# CIFAR python release


class _Evil:

  def __reduce__(self):
    return (print, ("unpickling ran code",))


class TestCifarArchive:

  @pytest.mark.parametrize("name", ["cifar10", "cifar100"])
  @pytest.mark.parametrize("packed", [True, False])
  def test_known_contents(self, tmp_path, name, packed):
    members, arrays = cifar_batches(name, np.random.default_rng(1))
    folder = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    if packed:
      archive = ("cifar-10-python.tar.gz" if name == "cifar10"
                 else "cifar-100-python.tar.gz")
      write_tar(tmp_path / archive,
                {f"{folder}/{k}": v for k, v in members.items()})
    else:
      (tmp_path / folder).mkdir()
      for k, v in members.items():
        (tmp_path / folder / k).write_bytes(v)
    ds = data.load_dataset(name, tmp_path)
    train_members = ([f"data_batch_{i}" for i in range(1, 6)]
                     if name == "cifar10" else ["train"])
    test_member = "test_batch" if name == "cifar10" else "test"
    expected = np.concatenate([arrays[m][0] for m in train_members])
    expected = expected.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1) / 255
    assert ds.example_shape == (32, 32, 3)
    assert len(ds.train) == len(expected) and len(ds.test) == 4
    np.testing.assert_allclose(raw_pixels(ds.train, ds), expected, atol=1e-5)
    np.testing.assert_array_equal(
        ds.train.labels, sum((arrays[m][1] for m in train_members), []))
    np.testing.assert_array_equal(ds.test.labels, arrays[test_member][1])
    assert ds.num_classes == (10 if name == "cifar10" else 100)
    assert ds.class_names == catalog.INFOS[name].class_names
    assert len(ds.pixel_mean) == 3

  def test_other_cifar_is_not_taken(self, tmp_path):
    members, _ = cifar_batches("cifar100", np.random.default_rng(1))
    write_tar(tmp_path / "cifar-100-python.tar.gz",
              {f"cifar-100-python/{k}": v for k, v in members.items()})
    with pytest.raises(DataError) as e:
      data.load_dataset("cifar10", tmp_path)
    assert_one_line_error(e, "cifar-10-python.tar.gz",
                          "cifar-100-python.tar.gz", "--config.data_dir")

  def test_pickle_with_code_is_refused(self, tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    members, _ = cifar_batches("cifar10", np.random.default_rng(1))
    for k, v in members.items():
      (folder / k).write_bytes(v)
    (folder / "test_batch").write_bytes(pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(DataError) as e:
      data.load_dataset("cifar10", tmp_path)
    assert_one_line_error(e, "test_batch")


# ---------------------------------------------------------------------------
# Image folders


class TestImageFolder:

  def test_png_tree_canonical_classes(self, tmp_path):
    rng = np.random.default_rng(2)
    names = catalog.INFOS["cifar10"].class_names
    folders = [n.upper() if i % 2 else n for i, n in enumerate(names)][::-1]  # any case/order
    tree = image_tree(rng, folders, per_class=2)
    write_tree(tmp_path, tree)
    ds = data.load_dataset("cifar10", tmp_path, cache_dir=tmp_path / "cache")
    # Canonical CIFAR-10 labels (airplane 0, ..., truck 9); order by (label, file name).
    by_label = sorted(folders, key=lambda f: names.index(f.lower()))
    order = [f"train/{c}/{i:03d}.png" for c in by_label for i in range(2)]
    np.testing.assert_array_equal(ds.train.labels, np.repeat(np.arange(10), 2))
    np.testing.assert_array_equal(ds.train.ids, np.arange(20))
    expected = np.stack([tree[k] for k in order]) / 255
    np.testing.assert_allclose(raw_pixels(ds.train, ds), expected, atol=1e-5)
    assert ds.class_names[:4] == ("airplane", "automobile", "bird", "cat")
    assert ds.example_shape == (32, 32, 3)

  def test_fewer_class_folders_than_classes_refused(self, tmp_path):
    # A folder of one CIFAR-10 class is not CIFAR-10 (it would score 100% test accuracy).
    write_tree(tmp_path, image_tree(np.random.default_rng(2), ["cat"], per_class=3))
    with pytest.raises(DataError) as e:
      data.load_dataset("cifar10", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line_error(e, "1 class folders (cat)", "cifar10 has 10 classes")

  def test_images_of_another_shape_refused(self, tmp_path):
    # CIFAR-sized RGB images under the name mnist: refused before any channel conversion.
    write_tree(tmp_path, image_tree(np.random.default_rng(2), [str(i) for i in range(10)], 1))
    with pytest.raises(DataError) as e:
      data.load_dataset("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line_error(e, "images of shape 32x32 but mnist's are 28x28", "--config.data_dir")

  def test_sorted_names_when_not_canonical(self, tmp_path):
    rng = np.random.default_rng(3)
    write_tree(tmp_path, image_tree(rng, [f"c{i}" for i in range(10)], 1))
    ds = data.load_dataset("cifar10", tmp_path, cache_dir=tmp_path / "cache")
    assert ds.class_names == tuple(f"c{i}" for i in range(10))
    np.testing.assert_array_equal(ds.train.labels, np.arange(10))

  def test_wrong_class_count(self, tmp_path):
    write_tree(tmp_path, image_tree(np.random.default_rng(3), ["x", "y"], 1))
    with pytest.raises(DataError) as e:
      data.load_dataset("cifar10", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line_error(e, "2 class folders", "10 classes")

  def test_grayscale_jpeg_tar(self, tmp_path):
    rng = np.random.default_rng(4)
    tree = {}
    for split, n in (("train", 2), ("test", 1)):
      for digit in range(10):
        for i in range(n):
          flat = np.full((28, 28), 25 * digit + 3 * i, np.uint8)
          tree[f"mnist_jpg/{split}/{digit}/{i}.jpg"] = png_bytes(flat, "JPEG")
    tree["mnist_jpg/README"] = b"not an image"
    write_tar(tmp_path / "mnist-jpg.tar.gz", tree)
    ds = data.load_dataset("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert ds.example_shape == (28, 28, 1)
    assert len(ds.train) == 20 and len(ds.test) == 10
    np.testing.assert_array_equal(ds.train.labels, np.repeat(np.arange(10), 2))
    expected = np.repeat(25 * np.arange(10), 2) + np.tile([0, 3], 10)
    np.testing.assert_allclose(raw_pixels(ds.train, ds)[:, 0, 0, 0] * 255,
                               expected, atol=2)
    del rng

  def test_subset_decodes_only_chosen_and_cache(self, tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    tree = image_tree(rng, catalog.INFOS["cifar10"].class_names, per_class=4)
    members = {k: png_bytes(v) for k, v in tree.items()}
    archive = tmp_path / "src" / "tree.tar.gz"
    archive.parent.mkdir()
    write_tar(archive, members)
    cache = tmp_path / "cache"
    decoded = []
    original = image_folders._Reader._decode
    monkeypatch.setattr(image_folders._Reader, "_decode",
                        lambda self, f: decoded.append(f.key) or
                        original(self, f))
    monkeypatch.setattr(image_folders, "STATS_SAMPLE", 10)
    sub = data.load_dataset("cifar10", archive.parent, train_subset=5,
                            test_subset=3, cache_dir=cache)
    # 10 rows (every 4th of 40) for the stats, 5 + 3 for the subsets, and the DataIdentity's
    # fixed sample (16 of the 40 training rows, all 10 test rows), each row decoded once.
    train_rows = (set(range(0, 40, 4)) | set(identity.sample_rows(40).tolist())
                  | set(sub.train.ids.tolist()))
    assert len(decoded) == len(train_rows) + 10 and len(set(decoded)) < 50
    assert not list(cache.glob("*.npz"))  # partial decodes are not cached
    decoded.clear()
    full = data.load_dataset("cifar10", archive.parent, cache_dir=cache)
    assert len(decoded) == 50 and len(list(cache.glob("*.npz"))) == 2
    np.testing.assert_array_equal(full.train.images[sub.train.ids],
                                  sub.train.images)
    # Later loads come from the cache and never decode (nor read the tar).
    decoded.clear()
    monkeypatch.setattr(image_folders, "_read_archive", None)
    again = data.load_dataset("cifar10", archive.parent, train_subset=5,
                              test_subset=3, cache_dir=cache)
    assert not decoded
    np.testing.assert_array_equal(again.train.images, sub.train.images)
    np.testing.assert_array_equal(again.test.ids, sub.test.ids)
    assert again.class_names == full.class_names

  def test_mixed_sizes(self, tmp_path):
    tree = image_tree(np.random.default_rng(6), [str(i) for i in range(10)], 1,
                      shape=(4, 4, 3))
    tree["train/3/000.png"] = np.zeros((5, 4, 3), np.uint8)
    write_tree(tmp_path, tree)
    with pytest.raises(DataError) as e:
      data.load_dataset("svhn_cropped", tmp_path,
                        cache_dir=tmp_path / "cache")
    assert_one_line_error(e, "000.png", "one size")

  def test_missing_test_split(self, tmp_path):
    tree = image_tree(np.random.default_rng(7), [str(i) for i in range(10)], 1)
    write_tree(tmp_path, {k: v for k, v in tree.items()
                          if k.startswith("train")})
    with pytest.raises(DataError) as e:
      data.load_dataset("svhn_cropped", tmp_path)
    assert_one_line_error(e, "test/<class>/")

  def test_broken_image(self, tmp_path):
    tree = image_tree(np.random.default_rng(7), [str(i) for i in range(10)], 1)
    write_tree(tmp_path, tree)
    (tmp_path / "test/4/000.png").write_bytes(b"not a png")
    with pytest.raises(DataError) as e:
      data.load_dataset("svhn_cropped", tmp_path, cache_dir=tmp_path / "c")
    assert_one_line_error(e, "000.png", "remove or replace")


# ---------------------------------------------------------------------------
# npz and .mat


class TestNpzAndMat:

  def test_named_npz_float_1d(self, tmp_path):
    rng = np.random.default_rng(8)
    x_train = rng.normal(size=(12, 40))
    np.savez(tmp_path / "mnist1d.npz", x_train=x_train,
             y_train=np.arange(12) % 10, x_test=rng.normal(size=(5, 40)),
             y_test=np.arange(5),
             class_names=np.asarray([f"d{i}" for i in range(10)]))
    np.savez(tmp_path / "decoy.npz", x_train=np.zeros(1))
    ds = data.load_dataset("mnist1d", tmp_path)
    assert ds.example_shape == (40, 1)
    np.testing.assert_allclose(raw_pixels(ds.train, ds)[..., 0], x_train,
                               atol=1e-5)
    assert ds.class_names[0] == "d0"
    assert ds.source == f"local:{(tmp_path / 'mnist1d.npz').resolve()}"

  def test_single_npz_uint8(self, tmp_path):
    x = np.random.default_rng(9).integers(0, 256, (6, 3, 3, 3), np.uint8)
    np.savez(tmp_path / "whatever.npz", x_train=x, y_train=np.arange(6),
             x_test=x[:2], y_test=np.arange(2))
    ds = data.load_dataset("cifar10", tmp_path)
    np.testing.assert_allclose(raw_pixels(ds.train, ds), x / 255, atol=1e-5)

  def test_class_names_count(self, tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 3, 3)),
             y_train=np.zeros(2, int), x_test=np.zeros((2, 3, 3)),
             y_test=np.zeros(2, int), class_names=np.asarray(["a", "b"]))
    with pytest.raises(DataError) as e:
      data.load_dataset("mnist", tmp_path)
    assert_one_line_error(e, "names 2 classes", "mnist has 10")

  def test_missing_keys(self, tmp_path):
    np.savez(tmp_path / "cifar10.npz", x_train=np.zeros((2, 3, 3, 3)))
    with pytest.raises(DataError) as e:
      data.load_dataset("cifar10", tmp_path)
    assert_one_line_error(e, "y_train", "np.savez")

  def test_object_arrays_refused(self, tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 3, 3)),
             y_train=np.zeros(2, int), x_test=np.zeros((2, 3, 3)),
             y_test=np.zeros(2, int),
             class_names=np.array(["a", None], dtype=object))
    with pytest.raises(DataError) as e:
      data.load_dataset("mnist", tmp_path)
    assert_one_line_error(e, "pickle")

  def test_svhn_mat(self, tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    rng = np.random.default_rng(10)
    for split, n in (("train", 7), ("test", 3)):
      scipy_io.savemat(tmp_path / f"{split}_32x32.mat", {
          "X": rng.integers(0, 256, (32, 32, 3, n)).astype(np.uint8),
          "y": (np.arange(n) % 10 + 1).reshape(-1, 1)})
    ds = data.load_dataset("svhn_cropped", tmp_path)
    assert ds.example_shape == (32, 32, 3)
    np.testing.assert_array_equal(ds.train.labels, [1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(ds.test.labels, [1, 2, 3])
    mat = scipy_io.loadmat(tmp_path / "train_32x32.mat")
    np.testing.assert_allclose(raw_pixels(ds.train, ds)[2],
                               mat["X"][..., 2] / 255, atol=1e-5)


# ---------------------------------------------------------------------------
# Validation and errors


class TestErrors:

  def test_unknown_name(self):
    with pytest.raises(DataError) as e:
      data.load_dataset("cifar-10")
    assert_one_line_error(e, "'cifar-10'", "did you mean 'cifar10'",
                          ", ".join(data.DATASETS))

  def test_missing_dir(self, tmp_path):
    with pytest.raises(DataError) as e:
      data.load_dataset("mnist", tmp_path / "nope")
    assert_one_line_error(e, str(tmp_path / "nope"), "does not exist",
                          "train-images-idx3-ubyte.gz", "--config.data_dir")

  def test_empty_dir(self, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError) as e:
      data.load_dataset("fashion_mnist", tmp_path)
    assert_one_line_error(e, f"no fashion_mnist files in {tmp_path}",
                          "notes.txt", "t10k-images-idx3-ubyte.gz",
                          "fashion_mnist.npz", "--config.data_dir=DIR")

  def test_labels_out_of_range(self, tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((4, 2, 2), np.uint8),
             y_train=np.array([0, 10, 3, -1]),
             x_test=np.zeros((1, 2, 2), np.uint8), y_test=np.array([0]))
    with pytest.raises(DataError) as e:
      data.load_dataset("mnist", tmp_path)
    assert_one_line_error(e, "2 train labels", "[0, 10)", "fix the label")

  def test_files_of_another_dataset(self, tmp_path):
    make_idx_dir(tmp_path)
    with pytest.raises(DataError) as e:
      data.load_dataset("cifar10", tmp_path)
    assert_one_line_error(e, "images of shape 28x28 but cifar10's are 32x32")

  def test_nan_pixels(self, tmp_path):
    x = np.zeros((4, 2, 2), np.float32)
    x[2, 1, 1] = np.nan
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=np.arange(4),
             x_test=np.zeros((1, 2, 2)), y_test=np.array([0]))
    with pytest.raises(DataError) as e:
      data.load_dataset("mnist", tmp_path)
    assert_one_line_error(e, "1 train images", "non-finite", "row 2")

  @pytest.mark.parametrize("size", [0, -3, 31, 2.5, True])
  def test_bad_subset_size(self, tmp_path, size):
    make_idx_dir(tmp_path)
    with pytest.raises(DataError) as e:
      data.load_dataset("mnist", tmp_path, train_subset=size)
    assert_one_line_error(e, "train_subset=")

  def test_bad_subset_seed(self, tmp_path):
    make_idx_dir(tmp_path)
    with pytest.raises(DataError) as e:
      data.load_dataset("mnist", tmp_path, train_subset=5, subset_seed=-1)
    assert_one_line_error(e, "subset_seed")

  def test_corrupt_archive(self, tmp_path):
    (tmp_path / "images.tar.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(DataError) as e:
      data.load_dataset("cifar10", tmp_path)
    assert_one_line_error(e, "images.tar.gz")


# ---------------------------------------------------------------------------
# Subsets and mnist1d


@pytest.fixture(scope="module")
def mnist1d():
  return data.load_dataset("mnist1d")


class TestMnist1d:

  def test_shapes(self, mnist1d):
    assert len(mnist1d.train) == 4000 and len(mnist1d.test) == 1000
    assert mnist1d.example_shape == (40, 1)
    assert mnist1d.train.images.dtype == np.float32
    assert mnist1d.num_classes == 10 and mnist1d.source == "generated:mnist1d"
    assert set(np.unique(mnist1d.train.labels)) == set(range(10))

  def test_leaves_global_random_state_alone(self):
    np.random.seed(123)
    random.seed(123)
    expected = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    # The memoized function's body, which calls mnist1d's make_dataset.
    mnist1d_source.generate_mnist1d.__wrapped__(seed=1, num_samples=100)
    assert (np.random.random(), random.random()) == expected


class TestSubsets:

  def test_ids_stratified_stable(self, mnist1d):
    a = data.load_dataset("mnist1d", train_subset=500, test_subset=100,
                          subset_seed=3)
    b = data.load_dataset("mnist1d", train_subset=500, test_subset=100,
                          subset_seed=3)
    c = data.load_dataset("mnist1d", train_subset=500, subset_seed=4)
    np.testing.assert_array_equal(a.train.ids, b.train.ids)
    assert not np.array_equal(a.train.ids, c.train.ids)
    for split, full in ((a.train, mnist1d.train), (a.test, mnist1d.test)):
      assert np.all(np.diff(split.ids) > 0)  # sorted, unique
      # Same example, same pixels and label: normalization ignores subsets.
      np.testing.assert_array_equal(split.images, full.images[split.ids])
      np.testing.assert_array_equal(split.labels, full.labels[split.ids])
      share = np.bincount(full.labels, minlength=10) * len(split) / len(full)
      counts = np.bincount(split.labels, minlength=10)
      assert np.all(np.abs(counts - share) < 1)
    assert a.pixel_mean == mnist1d.pixel_mean
    assert len(c.test) == 1000

  def test_stratified_subset_exact(self):
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    rows = subsets.stratified_subset(labels, 10, 0)
    np.testing.assert_array_equal(np.bincount(labels[rows]), [5, 3, 2])
    rows = subsets.stratified_subset(labels, 7, 0)  # 3.5, 2.1, 1.4 -> 4, 2, 1
    np.testing.assert_array_equal(np.bincount(labels[rows]), [4, 2, 1])
    small = subsets.stratified_subset(labels, 20, 9)
    large = subsets.stratified_subset(labels, 60, 9)
    assert set(small) <= set(large)
    np.testing.assert_array_equal(subsets.stratified_subset(labels, 100, 0),
                                  np.arange(100))


# ---------------------------------------------------------------------------
# TFDS


class TestTfds:

  def test_tfds_not_importable(self, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(DataError) as e:
      data.load_dataset("cifar10")
    assert_one_line_error(e, "tensorflow_datasets", "not importable",
                          "cifar-10-python.tar.gz", "--config.data_dir=DIR")

  # The real library, in both file formats: tests/test_tfds.py.

  def test_mnist1d_has_no_tfds(self):
    with pytest.raises(DataError) as e:
      tfds_source.load_tfds(catalog.INFOS["mnist1d"])
    assert_one_line_error(e, "mnist1d")


# ---------------------------------------------------------------------------
# The real shared data


class TestSharedData:

  def test_mnist(self):
    ds = data.load_dataset("mnist", shared("mnist"))
    np.testing.assert_array_equal(
        np.bincount(ds.train.labels),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    assert len(ds.test) == 10000 and ds.example_shape == (28, 28, 1)
    # Published MNIST pixel statistics (e.g. torchvision's Normalize).
    np.testing.assert_allclose(ds.pixel_mean, [0.1307], atol=5e-5)
    np.testing.assert_allclose(ds.pixel_std, [0.3081], atol=5e-5)
    mean, std = normalization.channel_stats(
        data.local_files.read_idx(shared("mnist") /
                                  "train-images-idx3-ubyte.gz")[..., None])
    np.testing.assert_allclose([mean[0], std[0]], [0.1307, 0.3081], atol=5e-5)

  def test_fashion_mnist(self):
    ds = data.load_dataset("fashion_mnist", shared("fashion_mnist"))
    np.testing.assert_array_equal(np.bincount(ds.train.labels), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(ds.test.labels), [1000] * 10)
    assert ds.class_names[0] == "T-shirt/top"

  @pytest.mark.slow
  def test_cifar10_jpeg_subset(self, tmp_path):
    ds = data.load_dataset("cifar10", shared("cifar10_jpeg_q75"),
                           train_subset=200, test_subset=50,
                           cache_dir=tmp_path)
    assert ds.example_shape == (32, 32, 3)
    assert ds.class_names == catalog.INFOS["cifar10"].class_names
    np.testing.assert_array_equal(np.bincount(ds.train.labels), [20] * 10)
    np.testing.assert_array_equal(np.bincount(ds.test.labels), [5] * 10)
    # Canonical order is by class, 5000 training images per class.
    np.testing.assert_array_equal(ds.train.labels, ds.train.ids // 5000)
    np.testing.assert_array_equal(ds.test.labels, ds.test.ids // 1000)
    # CIFAR-10's published per-channel stats, JPEG q75 shifts them slightly.
    np.testing.assert_allclose(ds.pixel_mean, [0.4914, 0.4822, 0.4465],
                               atol=2e-3)
    np.testing.assert_allclose(ds.pixel_std, [0.2470, 0.2435, 0.2616],
                               atol=4e-3)
    assert not list(tmp_path.iterdir())  # a subset writes no cache


def test_data_is_a_leaf():
  """regularity_jax.data imports nothing else of regularity_jax."""
  package = pathlib.Path(data.__file__).parent
  for path in package.glob("*.py"):
    for node in ast.walk(ast.parse(path.read_text())):
      names = ([a.name for a in node.names] if isinstance(node, ast.Import)
               else [node.module or ""] if isinstance(node, ast.ImportFrom)
               else [])
      for name in names:
        if name.startswith("regularity_jax"):
          assert name.startswith("regularity_jax.data"), (path, name)
