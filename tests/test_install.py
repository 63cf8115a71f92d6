"""The lean install: the core requirements hold no test, notebook, browser or TFDS package, and
`import regularity_jax.metrics` needs only JAX and NumPy (checked in a subprocess where every
other package is blocked, as in a venv holding only jax and numpy)."""

import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

# The packages of `pip install jax numpy`: jax's own requirements, and the standard library.
JAX_AND_NUMPY = ("jax", "jaxlib", "numpy", "ml_dtypes", "opt_einsum", "scipy")


def _sections():
  """requirements.txt as setup.py reads it: {"core": [...], "<extra>": [...]} of names."""
  sections, name = {"core": []}, "core"
  for line in (REPO / "requirements.txt").read_text().splitlines():
    header = re.match(r"#\s*\[([\w-]+)\]", line)
    if header:
      name = header.group(1)
      sections[name] = []
    elif line.strip() and not line.startswith("#"):
      sections[name].append(re.split(r"[<>=\[ ]", line.strip())[0].lower())
  return sections


def test_core_requirements_hold_no_tool_of_tests_notebooks_browser_or_tfds():
  sections = _sections()
  tools = {"pytest", "pytest-xdist", "hypothesis", "nbclient", "nbformat", "nbconvert",
           "ipykernel", "playwright", "tensorflow", "tensorflow-datasets", "cleanlab",
           "mkdocs-material", "mkdocstrings"}
  assert not tools & set(sections["core"]), sections["core"]
  for extra in ("test", "notebooks", "browser", "tfds", "docs", "cleanlab"):
    assert sections.get(extra), f"requirements.txt has no [{extra}] section"
  assert "jax" in sections["core"] and "flax" in sections["core"]


_BLOCKED_IMPORT = textwrap.dedent("""
    import importlib.abc, importlib.machinery, sys
    ALLOWED = set(sys.argv[1].split(",")) | {"regularity_jax"}
    STARTUP = set(sys.modules)  # what site's .pth files loaded (e.g. an editable install's finder)

    def installed(module):  # a package of site-packages, not the standard library's
      return "-packages" in (getattr(module, "origin", None) or getattr(module, "__file__", None)
                             or "")

    class Blocker(importlib.abc.MetaPathFinder):
      # Every top-level package installed beside jax and numpy is absent.
      def find_spec(self, name, path=None, target=None):
        if "." in name or name in ALLOWED:
          return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and installed(spec):
          raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

    sys.meta_path.insert(0, Blocker())
    import jax, jax.numpy as jnp
    import regularity_jax.metrics as metrics
    from regularity_jax.metrics import difficulty
    tracker = metrics.Tracker(num_examples=8, kernels=("forgetting", "cumulative", "margins",
                                                       "confidence"))
    state = tracker.update(tracker.init(), jnp.arange(4), jnp.eye(4, 3), jnp.arange(4) % 3)
    table = tracker.summarize(state)
    print("observations", int(table["observations"].sum()))
    print("forgetting", difficulty.score("forgetting", table).shape)
    try:
      metrics.Tracker(num_examples=8, kernels=("losses",)).update(
          metrics.Tracker(num_examples=8, kernels=("losses",)).init(), jnp.arange(4),
          jnp.eye(4, 3), jnp.arange(4) % 3)
    except ImportError as e:
      print("losses:", e)
    outside = sorted({n.split(".")[0] for n, m in list(sys.modules.items()) if installed(m)}
                     - ALLOWED - STARTUP)
    print("outside", outside)
""")


@pytest.mark.slow  # a subprocess that imports JAX
def test_metrics_import_needs_only_jax_and_numpy():
  out = subprocess.run([sys.executable, "-c", _BLOCKED_IMPORT, ",".join(JAX_AND_NUMPY)],
                       cwd=REPO, capture_output=True, text=True, timeout=300,
                       env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin",
                            "PYTHONPATH": str(REPO)}, check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  lines = out.stdout.splitlines()
  assert "observations 4" in lines
  assert "forgetting (8,)" in lines
  # The loss kernel needs optax (a core requirement): without it, one line says so.
  losses = [l for l in lines if l.startswith("losses:")]
  assert len(losses) == 1 and "pip install optax" in losses[0], lines
  assert lines[-1] == "outside []", lines
