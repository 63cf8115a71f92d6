"""regularity_jax: per-example training-dynamics statistics in JAX/Flax."""
import pathlib

import setuptools

_HERE = pathlib.Path(__file__).parent


def _requirements():
  lines = (_HERE / "requirements.txt").read_text().splitlines()
  return [l.strip() for l in lines if l.strip() and not l.startswith("#")]


setuptools.setup(
    name="regularity_jax",
    version="0.1.0",
    description=("Per-example regularity and difficulty signals (forgetting, "
                 "margins, turn-over dropout) computed during JAX training."),
    long_description=(_HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["regularity_jax", "regularity_jax.*"]),
    python_requires=">=3.11",
    install_requires=_requirements(),
    # tfds: preparing TFDS data (download_and_prepare, `tfds build`) and reading tfrecord
    # builds. cleanlab: label issues by confident learning (`estimators.label_issues`,
    # turnover.label_issues); the test command installs it, so its tests run.
    extras_require={"tfds": ["tensorflow>=2.21.0"], "cleanlab": ["cleanlab>=2.9.0"]},
)
