"""--config=experiments/studies/test_selection/config.py: the old path of regularity_jax/studies/test_selection/config.py."""
from regularity_jax.studies.test_selection.config import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.studies.test_selection.config import __doc__, get_config  # pylint: disable=unused-import
