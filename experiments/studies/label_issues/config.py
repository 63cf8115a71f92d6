"""--config=experiments/studies/label_issues/config.py: the old path of regularity_jax/studies/label_issues/config.py."""
from regularity_jax.studies.label_issues.config import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.studies.label_issues.config import __doc__, get_config  # pylint: disable=unused-import
