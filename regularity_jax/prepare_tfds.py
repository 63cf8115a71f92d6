r"""Prepares a dataset with tensorflow-datasets as array_record, for machines without network.

  pip install -e '.[tfds]'          # preparing needs TensorFlow
  python -m regularity_jax.prepare_tfds --dataset=mnist --tfds_data_dir=/data/tfds
  # copy /data/tfds to the offline machine, then there (TensorFlow not needed):
  python -m regularity_jax.main --config=regularity_jax/configs/mnist_toneva.py \
      --config.tfds.data_dir=/data/tfds --config.tfds.download=False --workdir=runs/toneva

Everything happens in regularity_jax.data.tfds_source.prepare_tfds; this file only parses flags.
"""

from absl import app
from absl import flags

from regularity_jax import cli

_DATASET = flags.DEFINE_string("dataset", None, "Dataset name (regularity_jax.data.DATASETS) or "
                                "any TFDS builder's name.")
_DATA_DIR = flags.DEFINE_string("tfds_data_dir", None, "TFDS data directory to prepare into.")
_MANUAL_DIR = flags.DEFINE_string("tfds_manual_dir", None, "TFDS manual-download directory.")
flags.mark_flags_as_required(["dataset", "tfds_data_dir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from regularity_jax import entrypoints  # pylint: disable=g-import-not-at-top
  from regularity_jax.data import registry  # pylint: disable=g-import-not-at-top
  from regularity_jax.data import tfds_source  # pylint: disable=g-import-not-at-top

  def prepare():
    name = _DATASET.value
    if name in registry.DATASETS:
      info = registry.dataset_info(name)
    else:  # any TFDS builder by name (classes and shapes are read from it when a run loads it)
      info = registry.catalog.DatasetInfo(name, (), 0, name, "its own files")
    return tfds_source.prepare_tfds(info, tfds_source.TfdsOptions(
        data_dir=_DATA_DIR.value, manual_dir=_MANUAL_DIR.value, download=True))

  where = entrypoints.run(prepare)
  print(f"prepared: {where} | run with --config.tfds.data_dir={_DATA_DIR.value}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
