"""--config=experiments/configs/margins_mnist.py: the old path of regularity_jax/configs/margins_mnist.py."""
from regularity_jax.configs.margins_mnist import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.configs.margins_mnist import __doc__, get_config  # pylint: disable=unused-import
