"""--config=experiments/studies/margins_auc_generalization/config.py: the old path of regularity_jax/studies/margins_auc_generalization/config.py."""
from regularity_jax.studies.margins_auc_generalization.config import *  # pylint: disable=wildcard-import,unused-wildcard-import
from regularity_jax.studies.margins_auc_generalization.config import __doc__, get_config  # pylint: disable=unused-import
