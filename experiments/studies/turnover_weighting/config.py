"""--config=experiments/studies/turnover_weighting/config.py: the old path of regularity_jax/studies/turnover_weighting/config.py."""
from regularity_jax.studies.turnover_weighting.config import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.studies.turnover_weighting.config import __doc__, get_config  # pylint: disable=unused-import
