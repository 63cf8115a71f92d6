"""--config=experiments/studies/noise_or_hard/config.py: the old path of regularity_jax/studies/noise_or_hard/config.py."""
from regularity_jax.studies.noise_or_hard.config import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.studies.noise_or_hard.config import __doc__, get_config  # pylint: disable=unused-import
