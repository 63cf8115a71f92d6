"""--config=experiments/studies/removal_curves/config.py: the old path of regularity_jax/studies/removal_curves/config.py."""
from regularity_jax.studies.removal_curves.config import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.studies.removal_curves.config import __doc__, get_config  # pylint: disable=unused-import
