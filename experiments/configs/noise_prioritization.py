"""--config=experiments/configs/noise_prioritization.py: the old path of regularity_jax/configs/noise_prioritization.py."""
from regularity_jax.configs.noise_prioritization import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.configs.noise_prioritization import __doc__, get_config  # pylint: disable=unused-import
