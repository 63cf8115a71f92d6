"""Per-example training-dynamics statistics as pure JAX kernels.

Every statistic family is a module with `init(num_examples)`, `update(state, ids, logits,
labels, mask=None)` and `summarize(state)`; state is a NamedTuple of [num_examples] arrays,
updated with `.at[ids]` scatters, so it runs inside a jitted (and sharded) training step with
no host sync. This package imports nothing else from regularity_jax but `regularity_jax.registry`
(a leaf module: the one door for parts by import path): copy both into any project.

  forgetting  forgetting/learning events, first_learned, first_forgotten, unforgettable, never_learned
  cumulative  cumulative_correct (CBTL on the training stream, CBGL on the evaluation stream)
  margins     last logit margin and AUM; `logit_margin`
  margin_distribution  sorted normalized-margin curve and its area, `margin_auc`
  confidence  confidence, variability, correctness (data maps)
  losses      last/mean cross-entropy and EL2N over observations
  el2n, grand single-pass scores
  Tracker     any subset of the above as one pytree
  statistics  the registry of tracker statistics: the kernels above, user ones by import path
  seeds       combining the summary tables of several seeds (host, NumPy)
  difficulty  the registry of per-example scores (higher = harder): one definition of each,
              Toneva's seed rule, tie-breaking
"""

from regularity_jax.metrics import confidence
from regularity_jax.metrics import indexing
from regularity_jax.metrics import cumulative
from regularity_jax.metrics import difficulty
from regularity_jax.metrics import forgetting
from regularity_jax.metrics import losses
from regularity_jax.metrics import margin_distribution
from regularity_jax.metrics import margins
from regularity_jax.metrics import seeds
from regularity_jax.metrics import statistics
from regularity_jax.metrics.margin_distribution import margin_auc
from regularity_jax.metrics.margins import logit_margin
from regularity_jax.metrics.scores import el2n
from regularity_jax.metrics.scores import grand
from regularity_jax.metrics.tracker import KERNELS
from regularity_jax.metrics.tracker import Tracker

__all__ = ["confidence", "cumulative", "difficulty", "forgetting", "losses", "margins", "logit_margin", "el2n",
           "grand", "KERNELS", "Tracker", "indexing", "margin_distribution", "margin_auc", "seeds", "statistics"]
