"""--config=experiments/configs/cifar10_resnet18.py: the old path of regularity_jax/configs/cifar10_resnet18.py."""
from regularity_jax.configs.cifar10_resnet18 import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.configs.cifar10_resnet18 import __doc__, get_config  # pylint: disable=unused-import
