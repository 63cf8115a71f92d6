"""regularity_jax: per-example training-dynamics statistics in JAX/Flax."""
import pathlib
import re

import setuptools

_HERE = pathlib.Path(__file__).parent


def _requirements():
  """(core, extras) of requirements.txt: lines before the first "# [name]" header are the
  core; the lines under a header are that extra's."""
  core, extras, section = [], {}, None
  for line in (_HERE / "requirements.txt").read_text().splitlines():
    header = re.match(r"#\s*\[([\w-]+)\]", line)
    if header:
      section = extras.setdefault(header.group(1), [])
    elif line.strip() and not line.startswith("#"):
      (core if section is None else section).append(line.strip())
  # dev: what the test command needs (the README's: pip install -e '.[dev]'; bash tests/run.sh).
  extras["dev"] = sorted({r for name in ("test", "notebooks", "browser", "cleanlab")
                          for r in extras[name]})
  return core, extras


_CORE, _EXTRAS = _requirements()

setuptools.setup(
    name="regularity_jax",
    version="0.1.0",
    description=("Per-example regularity and difficulty signals (forgetting, "
                 "margins, turn-over dropout) computed during JAX training."),
    long_description=(_HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["regularity_jax", "regularity_jax.*"]),
    python_requires=">=3.11",
    install_requires=_CORE,
    extras_require=_EXTRAS,
)
