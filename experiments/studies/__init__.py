"""The old home of the studies: experiments/studies/<name>/ loads regularity_jax/studies/<name>/."""
from regularity_jax.studies import STUDIES, load, run  # pylint: disable=unused-import
