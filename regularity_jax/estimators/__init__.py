"""Estimators that need the model, evaluated every `eval_every` epochs.

  turnover       memorization / self-influence, influence on targets, generalization error
                 from turn-over dropout (Liu, Lin, Jaggi 2021; Kobayashi et al. 2020)
  bias_variance  bias/variance split of the generalization error over runs (Zhou et al. 2023)
  detection      how well a score flags a set of examples (AUROC)
"""

from regularity_jax.estimators import bias_variance
from regularity_jax.estimators import detection
from regularity_jax.estimators import turnover

__all__ = ["bias_variance", "detection", "turnover"]
