"""--config=experiments/configs/quickstart.py: the old path of regularity_jax/configs/quickstart.py."""
from regularity_jax.configs.quickstart import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.configs.quickstart import __doc__, get_config  # pylint: disable=unused-import
