r"""Writes report.html (and plots/grids/*.png) for a finished run directory.

  python -m regularity_jax.report --workdir=runs/quickstart
  python -m regularity_jax.report --workdir=runs/mnist_toneva --data_dir=../shared/data/mnist --k=32

Every run writes its report when it ends (--config.report, on by default); this command writes
it again for any run directory, for example one made before reports existed or with other k.
The run's examples are loaded again from its config (pass --data_dir when the run's data_dir
was relative to another working directory). regularity_jax.report does the work.
"""

from absl import app
from absl import flags

from regularity_jax import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A finished run directory.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where the run's dataset is (default: the "
                                "data_dir of its config.json).")
_K = flags.DEFINE_integer("k", 16, "Examples per grid.")
_PNGS = flags.DEFINE_bool("pngs", True, "Also write plots/grids/<split>_<score>.png.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from regularity_jax import entrypoints  # pylint: disable=g-import-not-at-top
  from regularity_jax import report  # pylint: disable=g-import-not-at-top
  path = entrypoints.run(lambda: report.write(_WORKDIR.value, data_dir=_DATA_DIR.value,
                                              k=_K.value, pngs=_PNGS.value))
  print(f"report: {path}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
