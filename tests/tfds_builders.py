"""A tiny MNIST-shaped TFDS dataset, built by a real TFDS builder, for the TFDS tests.

`RegjaxTiny` has MNIST's features (a 28x28x1 `Image`, a 10-class `ClassLabel`) and writes
20 training and 10 test examples whose pixel [0, 0, 0] holds the example's key and whose label
is `key % 10`, so a test can check every loaded example's label against its own pixels.

`RegjaxVaried` has images of varying size (the `tfds.image_size` tests; array_record only).

Preparing needs TensorFlow. The copies in tests/data/tfds/<file format>/ were made with

    python -c 'from tests import tfds_builders; tfds_builders.main("tests/data/tfds")'

(tensorflow 2.21, tensorflow-datasets 4.9.10), so the tests without TensorFlow read real
prepared files; with TensorFlow, tests/test_tfds.py rebuilds both formats and checks that they
load to the same arrays as these copies.
"""

import numpy as np
import tensorflow_datasets as tfds

NAME = "regjax_tiny"
FILE_FORMATS = ("array_record", "tfrecord")
TRAIN_KEYS = tuple(range(20))
TEST_KEYS = tuple(range(50, 60))


class RegjaxTiny(tfds.core.GeneratorBasedBuilder):
  """20 train / 10 test MNIST-shaped examples; pixel [0, 0, 0] = key, label = key % 10."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(28, 28, 1)),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples(TRAIN_KEYS),
            "test": self._generate_examples(TEST_KEYS)}

  def _generate_examples(self, keys):
    for key in keys:
      image = np.random.default_rng(key).integers(0, 256, (28, 28, 1), dtype=np.uint8)
      image[0, 0, 0] = key
      yield key, {"image": image, "label": key % 10}


VARIED_NAMES = ("even", "odd")
VARIED_TRAIN_KEYS = tuple(range(6))
VARIED_TEST_KEYS = tuple(range(10, 13))


class RegjaxVaried(tfds.core.GeneratorBasedBuilder):
  """Images of varying size (key k: (8 + k) x (10 + 2k) x 3, every pixel 20 k), 6 train / 3
  test, label k % 2 ("even", "odd"): what needs `tfds.image_size` (a resize) to load."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.ClassLabel(names=VARIED_NAMES),
        }),
        supervised_keys=("image", "label"))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples(VARIED_TRAIN_KEYS),
            "test": self._generate_examples(VARIED_TEST_KEYS)}

  def _generate_examples(self, keys):
    for key in keys:
      image = np.full((8 + key, 10 + 2 * key, 3), 20 * key, np.uint8)
      yield key, {"image": image, "label": key % 2}


def prepare(root, file_format: str, builder=RegjaxTiny) -> str:
  """Prepares the dataset under `root/<file_format>`; returns that TFDS data dir."""
  data_dir = f"{root}/{file_format}"
  builder(data_dir=data_dir, file_format=file_format).download_and_prepare()
  return data_dir


def main(root) -> None:
  for fmt in FILE_FORMATS:
    print(prepare(root, fmt))
  print(prepare(root, "array_record", RegjaxVaried))

