"""Test-session setup: one CPU device, a persistent compilation cache, headless plots.

The suite runs on one device; the checks that need 4 (fake CPU) devices run in processes of
their own (tests/test_multidevice.py), so no test here depends on 4 devices keeping pace on a
busy 2-core machine. The compilation cache is shared by every test and subprocess of this
session (JAX_COMPILATION_CACHE_DIR; set it yourself to share one across sessions): the tiny
runs of many tests compile the same programs.
"""

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="regularity_jax_xla_"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
if "--xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
  # One device here, whatever the caller's shell exports.
  os.environ["XLA_FLAGS"] = " ".join(f for f in os.environ["XLA_FLAGS"].split()
                                     if not f.startswith("--xla_force_host_platform_device_count"))


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: an end-to-end run over ~20 s (deselect with "
                          "-m 'not slow')")
