"""--config=experiments/studies/noise_prioritization/config.py: the old path of regularity_jax/studies/noise_prioritization/config.py."""
from regularity_jax.studies.noise_prioritization.config import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.studies.noise_prioritization.config import __doc__, get_config  # pylint: disable=unused-import
