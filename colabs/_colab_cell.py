"""The first code cell of every notebook in colabs/ (the builders and tests/test_colabs.py use it).

Locally, after `pip install -e '.[notebooks]'`, the cell does nothing. In Colab (regularity_jax
not installed) it installs the package from REPO_URL with pip, keeping Colab's jax and jaxlib
(their installed versions are pip constraints), and stops with one line while REPO_URL is empty.
"""

INSTALL_CELL = '''\
# In Colab: set REPO_URL to this repository's git address (what `git clone` takes), then run.
# Locally, after `pip install -e '.[notebooks]'` from the repository root, this cell does nothing.
REPO_URL = ""

import importlib, importlib.metadata, importlib.util, subprocess, sys, tempfile

class StopHere(Exception):
  def _render_traceback_(self):  # IPython shows this one line instead of a traceback
    return [f"error: {self}"]

if importlib.util.find_spec("regularity_jax") is None:
  if not REPO_URL:
    raise StopHere("regularity_jax is not installed: set REPO_URL in this cell to the "
                   "repository's git address and run it again")
  # Keep the jax and jaxlib Colab has (they match its accelerator): pin them for pip.
  keep = [f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()
          if (d.metadata["Name"] or "").lower().startswith("jax")]
  with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pins:
    pins.write("\\n".join(keep) + "\\n")
  subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", pins.name,
                  f"regularity_jax @ git+{REPO_URL}"], check=True)
  importlib.invalidate_caches()
import regularity_jax
print("regularity_jax from", regularity_jax.__path__[0])'''
