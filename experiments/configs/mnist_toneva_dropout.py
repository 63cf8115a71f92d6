"""--config=experiments/configs/mnist_toneva_dropout.py: the old path of regularity_jax/configs/mnist_toneva_dropout.py."""
from regularity_jax.configs.mnist_toneva_dropout import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.configs.mnist_toneva_dropout import __doc__, get_config  # pylint: disable=unused-import
