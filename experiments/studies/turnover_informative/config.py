"""--config=experiments/studies/turnover_informative/config.py: the old path of regularity_jax/studies/turnover_informative/config.py."""
from regularity_jax.studies.turnover_informative.config import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.studies.turnover_informative.config import __doc__, get_config  # pylint: disable=unused-import
