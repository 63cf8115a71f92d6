"""--config=experiments/configs/fashion_mnist.py: the old path of regularity_jax/configs/fashion_mnist.py."""
from regularity_jax.configs.fashion_mnist import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.configs.fashion_mnist import __doc__, get_config  # pylint: disable=unused-import
