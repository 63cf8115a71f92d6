"""`python -m experiments.prepare_tfds`: the old name of `python -m regularity_jax.prepare_tfds` (moved there)."""

from absl import app

from regularity_jax import cli
from regularity_jax import prepare_tfds as _command

__doc__ = _command.__doc__  # --help shows the command's own text
main = _command.main

if __name__ == "__main__":
  app.run(_command.main, flags_parser=cli.parse_flags)
