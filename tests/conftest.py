"""Test-session setup: 4 fake CPU devices, so sharded code is tested without accelerators.

XLA reads XLA_FLAGS once, when JAX's backend starts, so this must run before any test imports
jax. Single-device tests are unaffected: arrays live on device 0 unless sharded explicitly.
"""

import os

_FLAG = "--xla_force_host_platform_device_count=4"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
