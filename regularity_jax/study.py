r"""A study: several training runs and a Markdown report.

  python -m regularity_jax.study --config=regularity_jax/studies/turnover_labels/config.py:smoke \
      --workdir=runs/turnover_labels_smoke

Each study is regularity_jax/studies/<name>/: config.py (its `get_config`, whose `study` field is
<name>) and study.py (check, sweep, measure, report; regularity_jax.sweeps runs them).

The config names the study (`study`), the template of its training runs (`base`, any field
settable as --config.base.<field>=...) and the study's parameters; each config's docstring
gives its command, hardware, runtime and expected result. Training runs land in
WORKDIR/runs/<name>; rerunning the same command reuses the finished ones (nothing is
deleted), and the report is written to WORKDIR/report.md. This file only parses flags.
"""

from absl import app
from absl import flags

from regularity_jax import cli
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Study config file (path[:arg]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Study directory (created; reused if it exists).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # Imported here so that --help answers before JAX starts.
  from regularity_jax import studies  # pylint: disable=g-import-not-at-top
  from regularity_jax import entrypoints  # pylint: disable=g-import-not-at-top
  result = entrypoints.run(studies.run, _CONFIG.value, _WORKDIR.value,
                           quiet_logs=not flags.FLAGS["verbosity"].present)
  print(f"report: {result.report}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
