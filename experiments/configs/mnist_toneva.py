"""--config=experiments/configs/mnist_toneva.py: the old path of regularity_jax/configs/mnist_toneva.py."""
from regularity_jax.configs.mnist_toneva import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.configs.mnist_toneva import __doc__, get_config  # pylint: disable=unused-import
