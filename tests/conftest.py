"""Test-session setup: one CPU device, a persistent compilation cache, headless plots.

The suite runs on one device; the checks that need 4 (fake CPU) devices run in processes of
their own (tests/test_multidevice.py), so no test here depends on 4 devices keeping pace on a
busy 2-core machine. The compilation cache is shared by every test and subprocess of this
session (JAX_COMPILATION_CACHE_DIR; set it yourself to share one across sessions): the tiny
runs of many tests compile the same programs.
"""

import os
import tempfile

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="regularity_jax_xla_"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
if "--xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
  # One device here, whatever the caller's shell exports.
  os.environ["XLA_FLAGS"] = " ".join(f for f in os.environ["XLA_FLAGS"].split()
                                     if not f.startswith("--xla_force_host_platform_device_count"))


def pytest_configure(config):
  config.addinivalue_line(
      "markers", "slow: an end-to-end guarantee of the slow tier (`bash tests/run.sh slow`); "
      "the fast tier, `pytest -m 'not slow'`, checks each part directly in at most 3 minutes")


# Fixtures that train a whole run (or several). xdist (`--dist loadgroup`, tests/run.sh) would
# otherwise build one on each worker that runs a test using it; the tests sharing one go to one
# worker instead (an xdist_group named after the fixture). They are session-scoped: a worker
# interleaves other modules' tests with a group's, and a module-scoped fixture is torn down
# (and rebuilt) each time the worker leaves its module.
SHARED_RUNS = {
    "test_faults.py": "reference",
    "test_margins_engine.py": "run",
    "test_models.py": "cifar_resnet18",
    "test_multihost.py": "runs",
    "test_scores_file.py": "scored",
    "test_streaming.py": "previous_scores",
    "test_studies_noise.py": "noise_study",
    "test_studies_toneva.py": "smoke",
    "test_training.py": "tiny_run",
    "test_your_data.py": "scored",
}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
  del config
  for item in items:
    fixture = SHARED_RUNS.get(item.path.name)
    if fixture and fixture in getattr(item, "fixturenames", ()):
      item.add_marker(pytest.mark.xdist_group(f"{item.path.stem}.{fixture}"))
