"""TFDS through the real library, offline: prepared data in both file formats, read by format.

The data: `tests.tfds_builders.RegjaxTiny`, an MNIST-shaped TFDS builder (20 train / 10 test;
pixel [0, 0, 0] = the example's key, label = key % 10), prepared as array_record and as
tfrecord in tests/data/tfds/. The tests load it through the project's own path
(`load_dataset` with the catalog entry of "mnist" pointed at it) and check ids and labels.
Without TensorFlow (CI's Python 3.12 job) the array_record build is read through
`tfds.data_source` and the tfrecord build is refused in one line; with TensorFlow (CI's Python
3.11 job) both formats load, agree example by example, and a fresh build in the test equals
the committed one.
"""

import dataclasses
import importlib.util
import json
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from regularity_jax import data
from regularity_jax.data import catalog
from regularity_jax.data import tfds_source
from regularity_jax.data.types import DataError
import tensorflow_datasets as tfds  # a requirement: its absence must fail, not skip
from tests import engine_fixtures

FIXTURES = pathlib.Path(__file__).parent / "data" / "tfds"
HAS_TF = importlib.util.find_spec("tensorflow") is not None
needs_tf = pytest.mark.skipif(not HAS_TF, reason="TensorFlow not installed")
without_tf = pytest.mark.skipif(HAS_TF, reason="TensorFlow installed")
TRAIN_KEYS, TEST_KEYS = tuple(range(20)), tuple(range(50, 60))
ROOT = pathlib.Path(__file__).parent.parent


@pytest.fixture
def tiny_mnist(monkeypatch):
  """Points the catalog's "mnist" at the tiny TFDS dataset."""
  info = dataclasses.replace(catalog.INFOS["mnist"], tfds_name="regjax_tiny")
  monkeypatch.setitem(catalog.INFOS, "mnist", info)
  return info


def load(data_dir, **options):
  return data.load_dataset("mnist", tfds_options=data.TfdsOptions(data_dir=str(data_dir),
                                                                   **options))


def raw_pixel_keys(split, dataset):
  """Undoes the normalization of pixel [0, 0, 0]: the example's key."""
  x = np.asarray(split.images)[:, 0, 0, 0] * dataset.pixel_std[0] + dataset.pixel_mean[0]
  return np.rint(255 * x).astype(int)


def assert_one_line(excinfo, *fragments):
  message = str(excinfo.value)
  assert "\n" not in message, message
  for fragment in fragments:
    assert fragment in message, message


def check_tiny(dataset):
  assert dataset.source == "tfds:regjax_tiny" and dataset.numbering == "tfds"
  for split, keys in ((dataset.train, TRAIN_KEYS), (dataset.test, TEST_KEYS)):
    np.testing.assert_array_equal(split.ids, np.arange(len(keys)))
    pixel_keys = raw_pixel_keys(split, dataset)
    assert sorted(pixel_keys) == list(keys)  # every example once
    np.testing.assert_array_equal(split.labels, pixel_keys % 10)  # its own label
  assert dataset.class_names == tuple(str(i) for i in range(10))


def tfds_order(data_dir, split):
  """The keys in TFDS's own split order, read straight from tfds.data_source."""
  source = tfds.data_source("regjax_tiny", split=split, data_dir=str(data_dir))
  return [int(source[i]["image"][0, 0, 0]) for i in range(len(source))]


class TestPrepared:

  def test_array_record_reads_with_data_source(self, tiny_mnist):
    dataset = load(FIXTURES / "array_record")
    check_tiny(dataset)
    # ids index TFDS's order (which is not the generation order 0, 1, 2, ...)
    order = tfds_order(FIXTURES / "array_record", "train")
    np.testing.assert_array_equal(raw_pixel_keys(dataset.train, dataset), order)
    assert order != sorted(order)

  @needs_tf
  def test_tfrecord_reads_with_tensorflow_in_the_same_order(self, tiny_mnist):
    from_tfrecord = load(FIXTURES / "tfrecord")
    from_array_record = load(FIXTURES / "array_record")
    check_tiny(from_tfrecord)
    for a, b in ((from_tfrecord.train, from_array_record.train),
                 (from_tfrecord.test, from_array_record.test)):
      np.testing.assert_array_equal(a.images, b.images)
      np.testing.assert_array_equal(a.labels, b.labels)

  @without_tf
  def test_tfrecord_without_tensorflow_is_one_line(self, tiny_mnist):
    with pytest.raises(DataError) as e:
      load(FIXTURES / "tfrecord")
    assert_one_line(e, "prepared as tfrecord", "only TensorFlow reads", "[tfds]",
                    "python -m experiments.prepare_tfds --dataset=mnist", "--config.data_dir=DIR")

  @needs_tf
  def test_built_in_the_test_equals_the_committed_build(self, tiny_mnist, tmp_path):
    from tests import tfds_builders
    for fmt in tfds_builders.FILE_FORMATS:
      fresh = load(tfds_builders.prepare(tmp_path, fmt))
      committed = load(FIXTURES / fmt)
      check_tiny(fresh)
      np.testing.assert_array_equal(fresh.train.images, committed.train.images)
      np.testing.assert_array_equal(fresh.test.labels, committed.test.labels)

  def test_a_damaged_build_is_one_line(self, tiny_mnist, tmp_path):
    shutil.copytree(FIXTURES / "array_record", tmp_path / "tfds")
    shard = next((tmp_path / "tfds" / "regjax_tiny" / "1.0.0").glob("*train.array_record*"))
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(DataError) as e:
      load(tmp_path / "tfds")
    assert_one_line(e, "could not read the prepared regjax_tiny", "prepare it again")

  @pytest.mark.parametrize("damaged", ["dataset_info.json", "features.json"])
  @pytest.mark.parametrize("name", ["mnist", "regjax_tiny"])  # a catalog name, a TFDS name
  def test_damaged_build_metadata_is_named_not_the_tfds_version(self, tiny_mnist, tmp_path,
                                                                 damaged, name):
    shutil.copytree(FIXTURES / "array_record", tmp_path / "tfds")
    version = tmp_path / "tfds" / "regjax_tiny" / "1.0.0"
    (version / damaged).write_text('{"name": "regjax_ti')  # cut mid-write
    with pytest.raises(DataError) as e:
      data.load_dataset(name, tfds_options=data.TfdsOptions(data_dir=str(tmp_path / "tfds"),
                                                            download=False))
    assert_one_line(e, f"the prepared TFDS build of regjax_tiny in {version} cannot be read",
                    "a damaged build, not a TFDS version problem", "delete that folder",
                    f"experiments.prepare_tfds --dataset={name}")
    assert "upgrade" not in str(e.value)

  @pytest.mark.slow
  def test_a_run_through_tfds_records_the_source(self, tiny_mnist, tmp_path):
    from regularity_jax.runs import scores_file
    from regularity_jax.training import train_and_evaluate
    config = engine_fixtures.tiny_config("", **{
        "tfds.data_dir": str(FIXTURES / "array_record"), "tfds.download": False,
        "num_epochs": 1, "batch_size": 10, "eval_batch_size": 10})
    train_and_evaluate(config, tmp_path / "run")
    scores = scores_file.load(tmp_path / "run" / "scores.npz")
    assert scores.provenance["source"] == "tfds:regjax_tiny"
    assert scores.provenance["numbering"] == "tfds"
    np.testing.assert_array_equal(scores.arrays["train/example_id"], np.arange(20))


class TestNotPrepared:

  def test_download_not_allowed_gives_the_offline_recipe(self, tmp_path):
    start = time.monotonic()
    with pytest.raises(DataError) as e:
      data.load_dataset("mnist", tfds_options=data.TfdsOptions(data_dir=str(tmp_path),
                                                               download=False))
    assert_one_line(e, f"mnist is not prepared in {tmp_path}", "tfds.download=False",
                    "python -m experiments.prepare_tfds --dataset=mnist --tfds_data_dir=DIR",
                    "--config.tfds.data_dir=DIR", "--config.data_dir=DIR")
    assert time.monotonic() - start < 60
    assert not any(tmp_path.iterdir())  # nothing written

  def test_offline_fails_at_once(self, tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_source, "NETWORK_PROBE", ("regularity-jax-offline.invalid", 443))
    start = time.monotonic()
    with pytest.raises(DataError) as e:
      data.load_dataset("mnist", tfds_options=data.TfdsOptions(data_dir=str(tmp_path)))
    if HAS_TF:
      assert_one_line(e, "the network is not reachable", "regularity-jax-offline.invalid",
                      "experiments.prepare_tfds --dataset=mnist")
    else:
      assert_one_line(e, "preparing TFDS data needs TensorFlow",
                      "No module named 'tensorflow'", "pip install -e '.[tfds]'")
    assert time.monotonic() - start < 60

  @pytest.mark.slow  # prepares a TFDS build (TensorFlow)
  def test_offline_with_downloads_in_the_cache_prepares_from_them(self, tiny_mnist, tmp_path,
                                                                  monkeypatch):
    from tests import tfds_builders  # registers the builder, as TFDS's own are
    del tfds_builders
    monkeypatch.setattr(tfds_source, "NETWORK_PROBE", ("regularity-jax-offline.invalid", 443))
    with pytest.raises(DataError) as e:  # an empty download cache: the probe's line at once
      load(tmp_path)
    if HAS_TF:
      assert_one_line(e, "the network is not reachable", "nor are its downloads in TFDS's "
                      f"download cache ({tmp_path / 'downloads'})")
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "regjax_tiny_source.bin").write_bytes(b"fetched before")
    if not HAS_TF:
      with pytest.raises(DataError) as e:
        load(tmp_path)
      assert_one_line(e, "preparing TFDS data needs TensorFlow")
      return
    check_tiny(load(tmp_path))  # TFDS prepared it offline, from its cache (none needed here)
    assert (tmp_path / "regjax_tiny" / "1.0.0" / "dataset_info.json").exists()

  def test_a_missing_importlib_resources_is_named(self, tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_source, "_importable", lambda module: module != "importlib_resources")
    with pytest.raises(DataError) as e:
      data.load_dataset("mnist", tfds_options=data.TfdsOptions(data_dir=str(tmp_path)))
    assert_one_line(e, "needs importlib_resources", "pip install -e '.[tfds]'")

  @pytest.mark.slow
  def test_the_cli_offline_is_one_line_exit_2_and_claims_no_workdir(self, tmp_path):
    workdir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "experiments.main",
         "--config=experiments/configs/quickstart.py", "--config.dataset=mnist",
         f"--config.tfds.data_dir={tmp_path / 'tfds'}", "--config.tfds.download=False",
         f"--workdir={workdir}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "mnist is not prepared" in lines[0], result.stderr
    assert not workdir.exists()


class TestOfflineRecipe:
  """The README's recipe: prepare where there is network, copy, read with download=False."""

  @needs_tf
  def test_prepare_copy_and_read_offline(self, tiny_mnist, tmp_path, monkeypatch):
    from tests import tfds_builders  # registers the builder, as TFDS's own are
    del tfds_builders
    monkeypatch.setattr(tfds_source, "network_reachable", lambda *a, **k: None)
    where = tfds_source.prepare_tfds(tiny_mnist, data.TfdsOptions(data_dir=str(tmp_path / "a")))
    assert pathlib.Path(where, "dataset_info.json").exists()
    shutil.copytree(tmp_path / "a", tmp_path / "offline")
    monkeypatch.setattr(tfds_source, "network_reachable", lambda *a, **k: "offline")
    check_tiny(load(tmp_path / "offline", download=False))

  @pytest.mark.slow
  def test_the_prepare_command_offline_is_one_line_exit_2(self, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "experiments.prepare_tfds", "--dataset=mnist",
         f"--tfds_data_dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: mnist is not prepared"), result.stderr
    assert ("network is not reachable" if HAS_TF else "needs TensorFlow") in lines[0]


class TestVaryingSizes:
  """A TFDS image-classification builder whose images vary in size (`RegjaxVaried`: key k is
  (8 + k) x (10 + 2k) x 3, every pixel 20 k): refused without tfds.image_size, resized with it."""

  def options(self, **kwargs):
    from tests import tfds_builders  # registers the builders
    del tfds_builders
    return data.TfdsOptions(data_dir=str(FIXTURES / "array_record"), download=False, **kwargs)

  def test_refused_without_a_resize(self):
    with pytest.raises(DataError) as e:
      data.load_dataset("regjax_varied", tfds_options=self.options())
    assert_one_line(e, "'regjax_varied' has images of varying size (None, None, 3)",
                    "--config.tfds.image_size='(H, W)'")

  def test_resized_as_read(self):
    from regularity_jax.data import sources
    options = self.options(image_size=(12, 7))
    info = sources.tfds_info("regjax_varied", options)
    assert info.spatial_shape == (12, 7) and info.class_names == ("even", "odd")
    raw = tfds_source.load_tfds(info, options)
    for split, keys in ((raw.train, range(6)), (raw.test, range(10, 13))):
      images = split.read()
      assert images.shape == (len(keys), 12, 7, 3) and images.dtype == np.uint8
      flat = images.reshape(len(images), -1)
      assert (flat == flat[:, :1]).all()  # a constant image stays constant when resized
      assert sorted(flat[:, 0] // 20) == list(keys)
      np.testing.assert_array_equal(split.labels, flat[:, 0] // 20 % 2)
    ds = data.load_dataset("regjax_varied", tfds_options=options)
    assert ds.example_shape == (12, 7, 3) and ds.num_classes == 2

  @needs_tf
  @pytest.mark.slow  # prepares a TFDS build
  def test_tfrecord_resized_equals_array_record(self, tmp_path):
    from regularity_jax.data import sources
    from tests import tfds_builders
    options = self.options(image_size=(12, 7))
    fresh = data.TfdsOptions(data_dir=tfds_builders.prepare(tmp_path, "tfrecord",
                                                            tfds_builders.RegjaxVaried),
                             download=False, image_size=(12, 7))
    a = tfds_source.load_tfds(sources.tfds_info("regjax_varied", options), options)
    b = tfds_source.load_tfds(sources.tfds_info("regjax_varied", fresh), fresh)
    for x, y in ((a.train, b.train), (a.test, b.test)):
      np.testing.assert_array_equal(x.read(), y.read())
      np.testing.assert_array_equal(x.labels, y.labels)

  def test_resize_is_pillows_bilinear(self):
    from PIL import Image
    image = np.random.default_rng(0).integers(0, 256, (9, 13, 3), np.uint8)
    expected = np.asarray(Image.fromarray(image).resize((5, 4), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(tfds_source.resize(image, (4, 5)), expected)

  @pytest.mark.parametrize("size", [(0, 5), (5,), (2.5, 3)])
  def test_a_bad_size_is_one_line(self, size):
    with pytest.raises(DataError) as e:
      data.sources.tfds_info("regjax_varied", self.options(image_size=size))
    assert_one_line(e, "must be (height, width) in pixels")

  def test_refused_for_other_datasets(self, tmp_path):
    from regularity_jax.training import setup as setup_lib
    engine_fixtures.write_tiny_npz(tmp_path)
    config = engine_fixtures.tiny_config(tmp_path, **{"tfds.image_size": (8, 8)})
    with pytest.raises(DataError) as e:
      setup_lib.load_data(config)
    assert_one_line(e, "resizes the images of a TFDS builder given by name",
                    "is a path dataset", "--config.tfds.image_size='()'")


def test_the_fixture_builds_are_what_they_say():
  for fmt in ("array_record", "tfrecord"):
    info = json.loads((FIXTURES / fmt / "regjax_tiny" / "1.0.0" / "dataset_info.json").read_text())
    assert info["fileFormat"] == fmt
    assert {s["name"]: sum(map(int, s["shardLengths"])) for s in info["splits"]} == {
        "train": 20, "test": 10}
