"""--config=experiments/studies/turnover_labels/config.py: the old path of regularity_jax/studies/turnover_labels/config.py."""
from regularity_jax.studies.turnover_labels.config import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.studies.turnover_labels.config import __doc__, get_config  # pylint: disable=unused-import
