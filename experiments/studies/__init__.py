"""The old home of the studies: experiments/studies/<name>/ loads regularity_jax/studies/<name>/."""
from regularity_jax.studies import STUDIES, StudyError, load, run, sweeps  # pylint: disable=unused-import
