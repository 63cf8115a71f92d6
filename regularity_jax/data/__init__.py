"""Datasets by name with stable example ids, and training-set corruptions.

A leaf of `regularity_jax`: imports nothing else of the package; loading
uses numpy and Pillow, and optionally tensorflow_datasets, mnist1d and scipy
(SVHN .mat files); the on-device helpers `augment` and `batching` use jax.

    ds = load_dataset("mnist", data_dir="../shared/data/mnist",
                      train_subset=3000)
    ds = corrupt(ds, "symmetric", fraction=0.2, seed=0)
    ds.train.images   # f32[3000, 28, 28, 1], normalized per channel
    ds.train.ids      # i32[3000], indices into the full 60000-example split

Modules: `types` (Split, Dataset, DataError), `catalog` (names, classes),
`registry` (load_dataset, load_function), `sources` (which door a dataset spec names: a catalog
name, a path, a dataset function, a TFDS name; the function contract), `identity`
(DataIdentity: what says two runs saw the same data), `releases` (a catalog name's known
release and the check of data given that name), `local_files` / `image_folders` / `tfds_source` /
`mnist1d_source` (the sources), `subsets`, `normalization`, `permutation` (one fixed pixel
permutation of every image: permuted MNIST), `corruption`, `partitions` (holdout, threshold
samples);
`augment`, `batching` and `bijection` (on-device, jax: the epoch plans); `streaming` (grain: host reads of the rows of
a fixed plan of positions).
"""

from regularity_jax.data.catalog import DATASETS
from regularity_jax.data.corruption import CORRUPTIONS
from regularity_jax.data.corruption import corrupt
from regularity_jax.data.corruption import PIXEL_PERMUTATIONS
from regularity_jax.data.partitions import add_threshold_samples
from regularity_jax.data.partitions import hold_out
from regularity_jax.data.identity import DataIdentity
from regularity_jax.data.registry import load_dataset
from regularity_jax.data.registry import load_function
from regularity_jax.data import sources
from regularity_jax.data.tfds_source import TfdsOptions
from regularity_jax.data.types import DataError
from regularity_jax.data.types import Dataset
from regularity_jax.data.types import Split

__all__ = (
    "CORRUPTIONS",
    "DATASETS",
    "DataError",
    "DataIdentity",
    "Dataset",
    "PIXEL_PERMUTATIONS",
    "Split",
    "TfdsOptions",
    "add_threshold_samples",
    "hold_out",
    "corrupt",
    "load_dataset",
    "load_function",
    "sources",
)
