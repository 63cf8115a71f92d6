"""What is known about each supported dataset before any file is read.

Class names follow TFDS (and the original releases), so a label means the same
class whichever source a dataset came from.
"""

from __future__ import annotations

import dataclasses

_DIGITS = tuple(str(i) for i in range(10))

_FASHION_MNIST = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

_CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
            "horse", "ship", "truck")

# The fine labels of CIFAR-100, in the order of the release's `meta` file.
_CIFAR100 = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle",
    "bicycle", "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel",
    "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster",
    "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse",
    "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear",
    "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea",
    "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip",
    "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm")

_IDX = ("train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (IDX, gzipped "
        "or not)")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """Static facts about a dataset name.

  Attributes:
    name: the name `load_dataset` takes.
    class_names: canonical class names, index = label.
    channels: 1 for grayscale, 3 for RGB; image folders decode to this.
    tfds_name: the TFDS builder name, or None when TFDS does not serve it.
    native_files: the dataset's own local file format, for error messages.
    spatial_shape: the shape of an example without its channel axis ((28, 28) for MNIST);
      data of another shape are refused (they belong to another dataset).
  """

  name: str
  class_names: tuple[str, ...]
  channels: int
  tfds_name: str | None
  native_files: str
  spatial_shape: tuple[int, ...] = ()

  def describe_shape(self) -> str:
    return "x".join(map(str, self.spatial_shape))

  @property
  def num_classes(self) -> int:
    return len(self.class_names)


INFOS = {
    info.name: info for info in (
        DatasetInfo("mnist1d", _DIGITS, 1, None,
                    "none (generated locally when data_dir is None)", (40,)),
        DatasetInfo("mnist", _DIGITS, 1, "mnist", _IDX, (28, 28)),
        DatasetInfo("fashion_mnist", _FASHION_MNIST, 1, "fashion_mnist",
                    _IDX, (28, 28)),
        DatasetInfo("cifar10", _CIFAR10, 3, "cifar10",
                    "cifar-10-python.tar.gz or cifar-10-batches-py/", (32, 32)),
        DatasetInfo("cifar100", _CIFAR100, 3, "cifar100",
                    "cifar-100-python.tar.gz or cifar-100-python/", (32, 32)),
        DatasetInfo("svhn_cropped", _DIGITS, 3, "svhn_cropped",
                    "train_32x32.mat and test_32x32.mat", (32, 32)),
    )
}

DATASETS = tuple(INFOS)
