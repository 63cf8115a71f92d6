"""Your data through the engine (docs/your_data.md): the dataset door, the function contract,
DataIdentity, catalog names checked against their release, text drawn as sentences, and
one-line refusals before anything is written."""

import json
import pathlib
import sys
import textwrap
import time

import numpy as np
import pytest

from regularity_jax import data
from regularity_jax.data import identity as identity_lib
from regularity_jax.data import releases
from regularity_jax.runs import scores_file
from regularity_jax.training import ConfigError
from regularity_jax.training import setup as setup_lib
from regularity_jax.training import train_and_evaluate
from tests import engine_fixtures

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
needs_mnist = pytest.mark.skipif(not (SHARED / "fashion_mnist").is_dir(),
                                 reason="../shared/data not present")

NAMES = ("heron", "otter", "lynx", "wren", "vole", "newt", "ibex")

# A user's dataset module, written outside the repository: 7 named classes, 24x24x3 images.
MY_DATA = """
import numpy as np

NAMES = {names!r}


def load(split, n_per_class=10, seed=0):
  rng = np.random.default_rng(seed + (split == "test"))
  n = n_per_class * len(NAMES)
  labels = np.arange(n) % len(NAMES)
  means = np.random.default_rng(42).uniform(40, 215, size=(len(NAMES), 1, 1, 3))
  images = np.clip(means[labels] + rng.normal(0, 30, size=(n, 24, 24, 3)), 0, 255)
  return {{"ids": np.arange(n) + (1000 if split == "test" else 0),
          "inputs": images.astype(np.uint8), "labels": labels, "class_names": NAMES}}


def bad_lengths(split):
  out = load(split)
  out["labels"] = out["labels"][:-1]
  return out
""".format(names=NAMES)

# A text dataset of token ids (0 pads) and a tiny NNX text classifier for it.
MY_TEXT = """
import numpy as np

VOCAB = ("<pad>", "the", "cat", "dog", "sat", "ran", "on", "mat", "far", "a", "big", "small")
POSITIVE = ((1, 2, 4, 6, 1, 7), (9, 11, 2, 4), (1, 2, 4))
NEGATIVE = ((1, 3, 5, 8), (9, 10, 3, 5, 8), (1, 3, 5))


def load(split):
  rows, labels = [], []
  for k in range(30 if split == "train" else 12):
    label = k % 2
    words = (POSITIVE if label == 0 else NEGATIVE)[k % 3]
    rows.append(list(words) + [0] * (8 - len(words)))
    labels.append(label)
  return {"inputs": np.asarray(rows, np.int32), "labels": np.asarray(labels),
          "class_names": ("cat sentence", "dog sentence"), "draw": "text", "vocabulary": VOCAB}
"""

MY_TEXT_MODEL = """
from flax import nnx
import jax.numpy as jnp


class BagOfWords(nnx.Module):

  def __init__(self, *, num_classes, rngs, vocab_size=12, width=8):
    self.embed = nnx.Embed(vocab_size, width, rngs=rngs)
    self.head = nnx.Linear(width, num_classes, rngs=rngs)

  def __call__(self, x):
    tokens = x[..., 0].astype(jnp.int32)              # token ids, [B, L]
    mask = (tokens > 0)[..., None].astype(jnp.float32)
    pooled = (self.embed(tokens) * mask).sum(1) / jnp.maximum(mask.sum(1), 1.0)
    return self.head(pooled)
"""


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
  """A folder outside the repository with the user's files."""
  return engine_fixtures.user_folder(tmp_path_factory, my_data=MY_DATA, my_text=MY_TEXT,
                                    my_text_model=MY_TEXT_MODEL)


def _my_arrays(outside):
  """The function's data, as arrays (to save them as an .npz)."""
  sys.path.insert(0, str(outside))
  try:
    import my_data  # pylint: disable=g-import-not-at-top,import-error
  finally:
    sys.path.remove(str(outside))
  return {split: my_data.load(split) for split in ("train", "test")}


def _config(dataset, data_dir="", **overrides):
  c = engine_fixtures.tiny_config("", **overrides)
  c.dataset, c.data_dir = dataset, data_dir
  return c


def assert_one_line(error, *fragments):
  message = str(error)
  assert "\n" not in message, message
  for fragment in fragments:
    assert fragment in message, message


class TestDoor:

  def test_kinds(self):
    assert data.sources.kind("mnist") == "catalog"
    assert data.sources.kind("/x/y.npz") == "path"
    assert data.sources.kind("./folder") == "path"
    assert data.sources.kind("pkg.mod:load") == "function"
    assert data.sources.kind("dir/my_data.py:load") == "function"
    assert data.sources.kind("beans") == "tfds"
    assert data.sources.kind("mnist_corrupted/shot_noise:3.0.1") == "tfds"
    with pytest.raises(data.DataError, match="must be a string"):
      data.sources.kind("")

  def test_npz_by_path_takes_classes_and_shape_from_the_data(self, tmp_path):
    path = engine_fixtures.write_tiny_npz(tmp_path, num_classes=4, shape=(5, 7, 3))
    ds = data.load_dataset(str(path))
    assert (ds.name, ds.num_classes, ds.class_names) == ("tiny", 4, ("0", "1", "2", "3"))
    assert ds.example_shape == (5, 7, 3) and ds.source == f"local:{path.resolve()}"
    named = engine_fixtures.write_tiny_npz(tmp_path / "n", class_names=list("abcdef"))
    assert data.load_dataset(str(named)).class_names == tuple("abcdef")

  def test_image_folder_by_path(self, tmp_path):
    from PIL import Image  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
      for name in ("zebra", "ant", "moth"):
        (tmp_path / "pics" / split / name).mkdir(parents=True)
        for j in range(n):
          Image.fromarray(rng.integers(0, 255, (9, 11, 3), np.uint8)).save(
              tmp_path / "pics" / split / name / f"{j}.png")
    ds = data.load_dataset(str(tmp_path / "pics"), cache_dir=tmp_path / "cache")
    assert ds.class_names == ("ant", "moth", "zebra") and ds.example_shape == (9, 11, 3)
    np.testing.assert_array_equal(ds.train.labels, [0, 0, 0, 1, 1, 1, 2, 2, 2])

  def test_a_four_class_toy_set_trains_a_four_logit_head(self, tmp_path):
    """The fixtures' tiny set (4 classes) by path: 4 logits, provenance names it, not mnist."""
    from regularity_jax import models  # pylint: disable=g-import-not-at-top
    import jax  # pylint: disable=g-import-not-at-top
    engine_fixtures.write_tiny_npz(tmp_path)
    config = engine_fixtures.tiny_config(tmp_path)
    assert config.dataset == str(tmp_path / "tiny.npz")
    ds = setup_lib.load_data(config)
    assert ds.num_classes == 4 and ds.name == "tiny"
    graphdef, params, state = setup_lib.build_model(config, ds, jax.random.key(0))
    logits, _ = models.apply(graphdef, params, state, ds.train.images[:3], train=False)
    assert logits.shape == (3, 4)

  def test_function_by_file_path_and_by_module(self, outside, monkeypatch):
    ds = setup_lib.load_data(_config(f"{outside}/my_data.py:load"))
    assert ds.class_names == NAMES and ds.example_shape == (24, 24, 3)
    np.testing.assert_array_equal(ds.test.ids[:3], [1000, 1001, 1002])  # the function's ids
    monkeypatch.syspath_prepend(str(outside))
    by_module = setup_lib.load_data(_config("my_data:load", **{"dataset_kwargs.seed": 0}))
    assert by_module.identity.digest == ds.identity.digest

  def test_random_access_source(self):
    class Source:
      class_names = ("a", "b")

      def __init__(self, n):
        self.n = n

      def __len__(self):
        return self.n

      def read(self, positions):
        positions = np.asarray(positions)
        return {"image": np.repeat(positions[:, None, None].astype(np.float32), 3, 1),
                "label": positions % 2, "id": positions * 2}

    ds = data.load_function(lambda split: Source(10 if split == "train" else 4), "src")
    np.testing.assert_array_equal(ds.train.ids, np.arange(10) * 2)
    assert ds.num_classes == 2 and ds.example_shape == (3, 1)

  def test_tfds_builder_by_name_takes_its_info(self):
    pytest.importorskip("tensorflow_datasets")
    from tests import tfds_builders  # pylint: disable=g-import-not-at-top,unused-import
    fixtures = pathlib.Path(__file__).parent / "data" / "tfds" / "array_record"
    options = data.TfdsOptions(data_dir=str(fixtures), download=False)
    ds = data.load_dataset("regjax_tiny", tfds_options=options)
    assert ds.num_classes == 10 and ds.example_shape == (28, 28, 1)
    assert ds.source == "tfds:regjax_tiny" and len(ds.train) == 20


class TestRefusals:
  """Each ends in one line before anything is written."""

  @needs_mnist
  def test_fashion_mnist_files_given_as_mnist(self, tmp_path):
    config = _config("mnist", data_dir=str(SHARED / "fashion_mnist"))
    with pytest.raises(data.DataError) as e:
      train_and_evaluate(config, tmp_path / "w")
    assert_one_line(e.value, "given as mnist", "other data", "--config.dataset=/path/to/data.npz")
    assert not (tmp_path / "w").exists()

  def test_mismatched_lengths_from_a_dataset_function(self, outside, tmp_path):
    with pytest.raises(data.DataError) as e:
      train_and_evaluate(_config(f"{outside}/my_data.py:bad_lengths"), tmp_path / "w")
    assert_one_line(e.value, "70 images but 69 labels", "one label per image")
    assert not (tmp_path / "w").exists()

  def test_unknown_tfds_name(self, tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(data.DataError) as e:
      train_and_evaluate(_config("no_such_dataset_qq"), tmp_path / "w")
    assert_one_line(e.value, "unknown dataset 'no_such_dataset_qq'", "TFDS builder",
                    "--config.dataset")
    assert not (tmp_path / "w").exists()

  def test_missing_function_and_file(self, outside, tmp_path):
    with pytest.raises(ConfigError, match="has no 'nope'.*--config.dataset"):
      train_and_evaluate(_config(f"{outside}/my_data.py:nope"), tmp_path / "w")
    with pytest.raises(ConfigError, match="dataset file .* not found"):
      train_and_evaluate(_config(f"{outside}/absent.py:load"), tmp_path / "w")
    assert not (tmp_path / "w").exists()

  def test_contract_violations(self):
    with pytest.raises(data.DataError, match="returned no labels"):
      data.load_function(lambda s: {"inputs": np.zeros((3, 2)), "class_names": ["a"]}, "f")
    with pytest.raises(data.DataError, match="negative or repeated"):
      data.load_function(lambda s: {"inputs": np.zeros((3, 2)), "labels": [0, 0, 0],
                                    "ids": [1, 1, 2], "class_names": ["a"]}, "f")
    with pytest.raises(data.DataError, match="returned a list"):
      data.load_function(lambda s: [1, 2], "f")


class TestIdentity:

  def test_npz_equals_the_function_when_ids_and_content_agree(self, outside, tmp_path):
    arrays = _my_arrays(outside)
    fn_ds = setup_lib.load_data(_config(f"{outside}/my_data.py:load"))

    def save(path, test_ids_offset=1000, change=None):
      x_train = arrays["train"]["inputs"].copy()
      if change is not None:
        x_train[change] = 255 - x_train[change]
      np.savez(path, x_train=x_train, y_train=arrays["train"]["labels"],
               x_test=arrays["test"]["inputs"], y_test=arrays["test"]["labels"],
               class_names=np.asarray(NAMES))
      return path

    # The npz door numbers rows 0..N-1; the function's test ids start at 1000: other ids.
    other_ids = setup_lib.load_data(_config(str(save(tmp_path / "a.npz"))))
    assert other_ids.identity.digest != fn_ds.identity.digest
    assert "other (id, label) pairs" in fn_ds.identity.differences(other_ids.identity.record())
    # The same data with the same ids (a function that reads the npz): the same identity.
    (tmp_path / "via_npz.py").write_text(textwrap.dedent(f"""
        import numpy as np
        def load(split, path={str(tmp_path / 'a.npz')!r}):
          z = np.load(path)
          return {{"inputs": z["x_" + split], "labels": z["y_" + split],
                  "class_names": [str(n) for n in z["class_names"]]}}
        """))
    same = setup_lib.load_data(_config(f"{tmp_path}/via_npz.py:load"))
    assert same.identity.digest == other_ids.identity.digest
    assert same.identity.source != other_ids.identity.source  # recorded, not compared
    # One sampled image re-encoded: other content, another identity.
    changed = setup_lib.load_data(_config(str(save(tmp_path / "b.npz", change=0))))
    assert changed.identity.fingerprints == other_ids.identity.fingerprints
    assert changed.identity.content != other_ids.identity.content

  def test_permutation_is_a_transform(self, tmp_path):
    path = engine_fixtures.write_tiny_npz(tmp_path)
    plain = data.load_dataset(str(path))
    permuted = data.load_dataset(str(path), permute_pixels_seed=3)
    assert permuted.identity.transforms == (
        f"permute_pixels:{permuted.pixel_permutation.sha256}",)
    assert plain.identity.content == permuted.identity.content  # the same stored pixels
    assert plain.identity.digest != permuted.identity.digest

  def test_cheap_for_a_million_lazy_examples(self):
    """The content hash decodes only its fixed sample: a lazy source of 1M examples."""
    reads = []

    def reader(rows):
      reads.append(len(rows))
      return np.ones((len(rows), 32, 32, 3), np.uint8) * (rows[:, None, None, None] % 251)

    n = 1_000_000
    split = data.raw.RawSplit(labels=np.arange(n) % 10, reader=reader)
    raw = data.raw.RawData(train=split, test=split, source="local:/lazy")
    start = time.perf_counter()
    ident = identity_lib.data_identity(raw)
    assert time.perf_counter() - start < 5.0
    assert sum(reads) == 2 * identity_lib.SAMPLE and ident.sizes == (n, n)

  def test_fingerprint_is_the_scores_files(self):
    ids, labels = np.arange(7), np.arange(7) % 3
    assert identity_lib.fingerprint(ids, labels) == scores_file.fingerprint(ids, labels)

  @needs_mnist
  def test_catalog_release_exact(self):
    mnist = data.load_dataset("mnist", SHARED / "mnist", train_subset=100, test_subset=50,
                              check_release=True)
    assert mnist.identity.release == "exact"
    assert mnist.identity.fingerprints == releases.RELEASES["mnist"].rows

  @pytest.mark.slow  # reads the 50000-image archive (5-10 s)
  @needs_mnist
  def test_catalog_release_lossy_cifar10_warns_once(self, tmp_path, capsys):
    cifar = data.load_dataset("cifar10", SHARED / "cifar10_jpeg_q75", train_subset=50,
                              test_subset=20, check_release=True, cache_dir=tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and "JPEG q75" in err[0]
    assert "pixels differ" in cifar.identity.release and "lossy" in cifar.identity.release

  def test_the_release_sizes_in_another_shape_are_refused(self, tmp_path, monkeypatch):
    """Data of a catalog name's release sizes must have its shape (32x32 or 3-channel data
    under "mnist" are other data); here a release of the tiny set's sizes stands in for MNIST's
    60000/10000 (the check is the same)."""
    monkeypatch.setitem(releases.RELEASES, "mnist", releases.Release((96, 48)))
    names = [str(c) for c in range(10)]
    for shape, fragment in (((32, 32, 1), "images of shape 32x32 but mnist's are 28x28"),
                            ((28, 28, 3), "with 3 channel(s) but mnist has 1")):
      folder = tmp_path / "x".join(map(str, shape))
      engine_fixtures.write_tiny_npz(folder, shape=shape, class_names=names)
      with pytest.raises(data.DataError) as e:
        data.load_dataset("mnist", folder, check_release=True)
      assert fragment in str(e.value) and "\n" not in str(e.value)
      assert "--config.dataset=/path/to/data.npz" in str(e.value) or "channel" in fragment
    engine_fixtures.write_tiny_npz(tmp_path / "ok", shape=(28, 28, 1), class_names=names)
    assert data.load_dataset("mnist", tmp_path / "ok", check_release=True).example_shape == (
        28, 28, 1)
    # other sizes: a part or a stand-in (the studies' and the tests' tiny data), any shape
    monkeypatch.setitem(releases.RELEASES, "mnist", releases.Release((60000, 10000)))
    assert data.load_dataset("mnist", tmp_path / "32x32x1", check_release=True)

  def test_a_part_of_the_release_is_not_refused(self, tmp_path):
    """Studies retrain on subsets written as NAME.npz under the catalog name: unchecked."""
    engine_fixtures.write_tiny_npz(tmp_path, class_names=[str(c) for c in range(10)])
    ds = data.load_dataset("mnist", tmp_path, check_release=True)
    assert ds.identity.release.startswith("not the release's sizes")


@pytest.fixture(scope="session")
def scored(tmp_path_factory):
  """A 1-epoch run on the tiny set by path: (its data's folder, its scores.npz)."""
  root = tmp_path_factory.mktemp("reuse")
  engine_fixtures.write_tiny_npz(root / "d")
  workdir = root / "run"
  train_and_evaluate(engine_fixtures.tiny_config(root / "d", num_epochs=1), workdir)
  return root, workdir / "scores.npz"


@pytest.mark.slow  # `scored` trains a run
class TestScoresReuse:

  def test_provenance_records_the_identity(self, scored):
    root, path = scored
    prov = scores_file.load(path).provenance
    ds = setup_lib.load_data(engine_fixtures.tiny_config(root / "d"))
    assert prov["data_identity"] == ds.identity.record()
    assert prov["data_identity"]["sizes"] == [96, 48]

  def test_an_old_file_without_identity_is_still_valid(self, scored, tmp_path):
    """A scores.npz written before DataIdentity: checked by the old fingerprint, accepted."""
    root, path = scored
    with np.load(path) as z:
      arrays = {k: z[k] for k in z.files}
    prov = json.loads(str(arrays.pop("provenance")))
    del prov["data_identity"]
    scores_file.write(tmp_path / "old.npz", arrays, prov)
    ds = setup_lib.load_data(engine_fixtures.tiny_config(root / "d"))
    values = scores_file.read_aligned(tmp_path / "old.npz", "forgetting", ds)
    assert values.shape == (96,) and np.isfinite(values).all()
    # ... and its labels are still checked example by example.
    arrays["train/original_label"] = (arrays["train/original_label"] + 1) % 4
    scores_file.write(tmp_path / "old_bad.npz", arrays, prov)
    with pytest.raises(scores_file.ScoresFileError, match="shared ids have other labels"):
      scores_file.read_aligned(tmp_path / "old_bad.npz", "forgetting", ds)

  def test_same_name_other_content_refused_by_identity(self, scored, tmp_path):
    root, path = scored
    other = engine_fixtures.write_tiny_npz(tmp_path / "d", seed=5)  # also "tiny", 96/48
    ds = setup_lib.load_data(engine_fixtures.tiny_config(other.parent))
    with pytest.raises(scores_file.ScoresFileError) as e:
      scores_file.read_aligned(path, "forgetting", ds)
    assert_one_line(e.value, "data identity", "other inputs at the sampled ids")


@pytest.mark.slow
def test_my_data_by_import_path_report_and_pruning(outside, tmp_path):
  """The issue's acceptance run: 7 named classes of 24x24x3 images from a file outside the
  repository; the report's grids are captioned with the 7 names; a second run prunes by the
  first run's scores; the same data as an .npz (with the function's ids) has its identity."""
  spec = f"{outside}/my_data.py:load"
  first = train_and_evaluate(_config(spec, num_epochs=2, report=True), tmp_path / "first")
  html = (first.workdir / "report.html").read_text()
  for name in NAMES:
    assert f"<th rowspan=\"2\">{name}</th>" in html
  assert (first.workdir / "plots" / "grids" / "train_forgetting.png").is_file()
  prov = scores_file.load(first.workdir / "scores.npz").provenance
  assert prov["dataset"] == spec and prov["data_identity"]["sizes"] == [70, 70]
  config = json.loads((first.workdir / "config.json").read_text())
  assert config["dataset_source"]["resolved"] == f"{outside}/my_data.py:load"
  # The report command loads the data again, through the recorded function.
  from regularity_jax import report  # pylint: disable=g-import-not-at-top
  (first.workdir / "report.html").unlink()
  assert all(f"<th rowspan=\"2\">{name}</th>" in report.write(first.workdir, pngs=False)
             .read_text() for name in NAMES)
  second = train_and_evaluate(_config(spec, num_epochs=1, **{
      "pruning.scores_path": str(first.workdir / "scores.npz"),
      "pruning.fraction_kept": 0.5}), tmp_path / "second")
  assert int(second.scores["train/active"].sum()) == 35


@pytest.mark.slow
def test_text_dataset_with_a_tiny_nnx_text_classifier(outside, tmp_path):
  """Token ids through a dataset function, a bag-of-words NNX model through the model door:
  the run trains and its report shows sentences, not pixels."""
  config = _config(f"{outside}/my_text.py:load", num_epochs=3, report=True, learning_rate=0.5,
                   model=f"{outside}/my_text_model.py:BagOfWords",
                   **{"margins.normalizer": "none"})
  del config.model_kwargs["hidden"]
  result = train_and_evaluate(config, tmp_path / "text")
  assert result.final["train_accuracy"] > 0.9
  html = (result.workdir / "report.html").read_text()
  assert '<div class="tx">the cat sat on the mat</div>' in html
  assert '<div class="tx">a big dog ran far</div>' in html
  assert "cat sentence" in html and "data:image/png" not in html.split("<h2 id=\"train\">")[1]


class TestDataFaults:
  """Every door, part 4 (issue 36): the data layer's silently wrong results and unclear lines.

  | fault                                                      | test (this class)                |
  |------------------------------------------------------------|----------------------------------|
  | uint8 training pixels beside float 0-255 test pixels       | uint8_beside_float_is_refused    |
  | 16-bit PNGs clipped to black and white                     | sixteen_bit_pngs_...             |
  | images in nested subfolders dropped (folder and archive)   | nested_subfolders_are_found      |
  | a damaged TFDS build blamed on the TFDS version            | test_tfds (damaged_build_...)    |
  | TFDS downloads in TFDS's cache refused offline             | test_tfds (offline_with_...)     |
  | relative config paths recorded as typed                    | test_faults TestPaths (relative) |
  """

  def test_uint8_beside_float_is_refused(self, tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (8, 4, 4, 1)).astype(np.uint8)
    y = np.arange(8) % 2
    for train, test, refused in ((x, x.astype(np.float32), True),
                                 (x.astype(np.float32), x, True),
                                 (x, x, False), (x.astype(np.float32), x.astype(np.float32), False)):
      path = tmp_path / f"d{int(refused)}{train.dtype}{test.dtype}.npz"
      np.savez(path, x_train=train, y_train=y, x_test=test, y_test=y)
      if not refused:  # one scaling for both: the same example, the same pixels
        ds = data.load_dataset(str(path))
        np.testing.assert_array_equal(ds.train.images, ds.test.images)
        continue
      with pytest.raises(data.DataError) as e:
        data.load_dataset(str(path))
      message = str(e.value)
      assert "\n" not in message and f"{train.dtype} train images but {test.dtype} test" in message
      assert "store both splits as uint8 (0-255) or both as float" in message

  def _png_folder(self, root, images, nested=False):
    from PIL import Image  # pylint: disable=g-import-not-at-top
    for split in ("train", "test"):
      for label, name in enumerate(("a", "b")):
        folder = root / split / name
        for j, image in enumerate(images[label::2]):
          where = folder / f"sub{j % 2}" / "deeper" if nested and j else folder
          where.mkdir(parents=True, exist_ok=True)
          Image.fromarray(image).save(where / f"{j}.png")
    return root

  def test_sixteen_bit_pngs_are_scaled_not_clipped(self, tmp_path):
    wide = (np.arange(4 * 6 * 5).reshape(4, 6, 5) * 547).astype(np.uint16)  # 0 .. 65093
    folder = self._png_folder(tmp_path / "deep", list(wide))
    info, raw = data.sources.load_path(str(folder), cache_dir=tmp_path / "cache")
    assert info.channels == 1 and info.spatial_shape == (6, 5)
    expected = np.rint(wide.astype(np.float64) / 257).astype(np.uint8)  # 16 -> 8 bits
    train = raw.train.read()[..., 0]
    np.testing.assert_array_equal(train, expected[[0, 2, 1, 3]])  # by class, then file name
    assert len(np.unique(train)) > 50  # not black and white

  @pytest.mark.parametrize("packed", [False, True])
  def test_nested_subfolders_are_found(self, tmp_path, packed):
    import tarfile  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng(1)
    images = list(rng.integers(0, 256, (12, 5, 5), np.uint8))
    folder = self._png_folder(tmp_path / "birds", images, nested=True)
    assert len(list(folder.rglob("*.png"))) == 24 and list(folder.rglob("deeper/*.png"))
    spec = folder
    if packed:
      spec = tmp_path / "birds.tar.gz"
      with tarfile.open(spec, "w:gz") as tar:
        tar.add(folder, arcname="export/birds")
    ds = data.load_dataset(str(spec), cache_dir=tmp_path / "cache")
    assert len(ds.train) == len(ds.test) == 12 and ds.class_names == ("a", "b")
    np.testing.assert_array_equal(np.bincount(ds.train.labels), [6, 6])
    # every image once, each with its own class folder's label
    info, raw = data.sources.load_path(str(spec), cache_dir=tmp_path / "cache2")
    found = sorted(map(bytes, raw.train.read().reshape(12, -1)))
    assert found == sorted(image.tobytes() for image in images)
