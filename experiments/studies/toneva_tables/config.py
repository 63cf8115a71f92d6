"""--config=experiments/studies/toneva_tables/config.py: the old path of regularity_jax/studies/toneva_tables/config.py."""
from regularity_jax.studies.toneva_tables.config import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.studies.toneva_tables.config import __doc__, get_config  # pylint: disable=unused-import
