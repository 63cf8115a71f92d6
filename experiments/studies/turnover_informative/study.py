"""The old name of regularity_jax.studies.turnover_informative.study (moved there)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("regularity_jax.studies.turnover_informative.study")
