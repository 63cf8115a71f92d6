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
  config.pluginmanager.register(_GroupSuffix(), "regularity_jax_group_suffix")
  config.addinivalue_line(
      "markers", "slow: an end-to-end guarantee of the slow tier (`bash tests/run.sh slow`); "
      "the fast tier, `pytest -m 'not slow'`, checks each part directly in at most 3 minutes")
  config.addinivalue_line(
      "markers", "versions: an end-to-end guarantee that rests on the releases installed "
      "(given by VERSIONS below); `bash tests/run.sh versions` runs the fast tier and these")


# The slow tests whose outcome rests on the installed releases rather than on this project's
# code alone: jax.distributed across processes, sharding over 4 devices, orbax's checkpoints
# under SIGKILL, TFDS with or without TensorFlow, notebooks in a kernel. CI's Python 3.11 job
# runs the whole slow tier on the lower bounds; its Python 3.12 job, on the newest releases,
# runs the fast tier and these (`bash tests/run.sh versions`): the other slow tests exercise
# the same engine code through the same libraries.
VERSIONS = ("tests/test_multihost.py", "tests/test_multidevice.py", "tests/test_colabs.py",
            "tests/test_tfds.py", "tests/test_training.py::TestResume")


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
    if item.nodeid.startswith(VERSIONS):
      item.add_marker(pytest.mark.versions)
    fixture = SHARED_RUNS.get(item.path.name)
    if fixture and fixture in getattr(item, "fixturenames", ()):
      item.add_marker(pytest.mark.xdist_group(f"{item.path.stem}.{fixture}"))


class _GroupSuffix:
  """--dist loadgroup under pytest 9: xdist (3.8) names a test's group by appending "@group"
  to `item._nodeid`, which pytest 9 no longer reads (a node's id is `item._id`), so every test
  would be scheduled alone and each worker would build the shared runs again. This appends the
  suffix where pytest reads it, on the workers, after every other hook (a no-op where xdist's
  own suffix took effect). tests/test_readme.py checks the grouping in a subprocess."""

  @pytest.hookimpl(trylast=True)
  def pytest_collection_modifyitems(self, config, items):
    if not (os.environ.get("PYTEST_XDIST_WORKER") and config.getvalue("loadgroup")):
      return
    for item in items:
      groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                       for m in item.iter_markers("xdist_group")})
      suffix = "@" + "_".join(groups)
      if groups and not item.nodeid.endswith(suffix) and hasattr(item, "_id"):
        from _pytest.nodeid import coerce_node_id  # pylint: disable=g-import-not-at-top
        item._id = coerce_node_id(item.nodeid + suffix)  # pylint: disable=protected-access
