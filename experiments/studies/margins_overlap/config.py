"""--config=experiments/studies/margins_overlap/config.py: the old path of regularity_jax/studies/margins_overlap/config.py."""
from regularity_jax.studies.margins_overlap.config import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.studies.margins_overlap.config import __doc__, get_config  # pylint: disable=unused-import
