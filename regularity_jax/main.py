r"""The main job: train a model while tracking every training and test example.

  python -m regularity_jax.main --config=regularity_jax/configs/quickstart.py --workdir=runs/quickstart
  python -m regularity_jax.main --config=regularity_jax/configs/mnist_toneva.py:smoke \
      --config.data_dir=../shared/data/mnist --workdir=runs/toneva_smoke

Any config field can be overridden with --config.<field>=<value>. Rerunning the same command
resumes from the last checkpoint. Everything happens in regularity_jax.training; this file only
parses flags.
"""

import functools
import os

from absl import app
from absl import flags

from regularity_jax import cli
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (path[:arg]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (created; resumed if it exists).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # Imported here so that --help answers before JAX starts.
  from regularity_jax import entrypoints  # pylint: disable=g-import-not-at-top
  from regularity_jax import training  # pylint: disable=g-import-not-at-top
  # A relative --config.model=path/to/file.py:Class is taken from the config file's folder.
  base_dir = os.path.dirname(os.path.abspath(config_flags.get_config_filename(
      flags.FLAGS["config"])))
  result = entrypoints.run(functools.partial(training.train_and_evaluate, base_dir=base_dir),
                           _CONFIG.value, _WORKDIR.value,
                           quiet_logs=not flags.FLAGS["verbosity"].present)
  final = result.final
  print(f"done: {result.workdir} | epoch {final.get('epoch')} | "
        f"test accuracy {final.get('test_accuracy', float('nan')):.4f} | "
        f"unforgettable {final.get('train_unforgettable_fraction', float('nan')):.1%}")
  page = result.workdir / "report.html"
  if page.is_file():  # --config.report (regularity_jax.report); process 0's in multi-host runs
    print(f"report: {page} (open it in a browser)")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
