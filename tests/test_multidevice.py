"""Multi-device checks on 4 fake CPU devices, each in a process of its own
(tests/multidevice_cases.py): the rest of the suite runs on one device."""

import os
import pathlib
import subprocess
import sys

import pytest

from tests import multidevice_cases

REPO = pathlib.Path(__file__).resolve().parents[1]
CASES = sorted(name for name, fn in vars(multidevice_cases).items()
               if callable(fn) and not name.startswith("_") and fn.__module__ == multidevice_cases.__name__)


def test_there_are_cases():
  assert len(CASES) >= 4


# The fast tier runs the shortest case (an engine run on 4 devices whose batch does not divide
# by 4); the slow tier every case.
FAST_CASES = ("batch_not_divisible_by_devices",)


@pytest.mark.parametrize("case", [
    c if c in FAST_CASES else pytest.param(c, marks=pytest.mark.slow) for c in CASES])
def test_on_four_fake_devices(case, tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=4")
  code = f"from tests import multidevice_cases as m; m.{case}({str(tmp_path)!r})"
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-4000:]
