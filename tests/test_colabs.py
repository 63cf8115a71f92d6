"""Every notebook in colabs/ runs as users run it: `jupyter nbconvert --to notebook --execute`
after `pip install -e '.[notebooks]'`, no PYTHONPATH, started from the notebook's own folder
(`cd colabs && jupyter nbconvert ... 01_quickstart.ipynb`) or from the repository root
(`jupyter nbconvert ... colabs/01_quickstart.ipynb`).

To keep CI's time, each CI job runs every notebook from one start: REGJAX_NOTEBOOKS_FROM=root in
the Python 3.11 job, =folder in the Python 3.12 job (.ci/run); unset, from the folder; "both"
runs the two. The Colab path (the first cell installing from REPO_URL) is
test_colab_cell_installs_from_repo_url.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "colabs").glob("*.ipynb"))
STARTS = {"folder": ("folder",), "root": ("root",), "both": ("folder", "root")}[
    os.environ.get("REGJAX_NOTEBOOKS_FROM", "folder")]
sys.path.insert(0, str(REPO / "colabs"))
from _colab_cell import INSTALL_CELL  # pylint: disable=g-import-not-at-top,wrong-import-position


def _user_env():
  """The environment of a user's shell: no PYTHONPATH (the package comes from the install)."""
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env.setdefault("JAX_PLATFORMS", "cpu")
  return env


def test_there_are_notebooks():
  assert NOTEBOOKS, "colabs/ holds no notebooks"


def test_every_notebook_opens_with_the_install_cell():
  """The first code cell is the Colab install cell (colabs/_colab_cell.py), REPO_URL empty."""
  for path in NOTEBOOKS:
    cells = json.loads(path.read_text())["cells"]
    first = next(c for c in cells if c["cell_type"] == "code")
    assert "".join(first["source"]) == INSTALL_CELL, path.name
    assert not any("from experiments" in "".join(c["source"]) for c in cells), path.name


@pytest.fixture(scope="module")
def installed():
  """Fails in one line unless regularity_jax imports from this checkout without PYTHONPATH."""
  where = subprocess.run([sys.executable, "-c", "import regularity_jax; print(regularity_jax.__file__)"],
                         env=_user_env(), cwd="/", capture_output=True, text=True, check=False)
  if where.returncode or not where.stdout.strip().startswith(str(REPO)):
    pytest.fail(f"regularity_jax is not installed from {REPO} (found: {where.stdout.strip() or where.stderr.strip()[-200:]}); "
                "run pip install -e '.[notebooks]' from the repository root")


@pytest.mark.slow
@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_with_nbconvert(path, start, installed, tmp_path):  # pylint: disable=unused-argument,redefined-outer-name
  cwd, name = (path.parent, path.name) if start == "folder" else (REPO, str(path.relative_to(REPO)))
  done = subprocess.run(
      [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
       "--ExecutePreprocessor.timeout=600", "--output-dir", str(tmp_path), name],
      cwd=cwd, env=_user_env(), capture_output=True, text=True, timeout=1200, check=False)
  assert done.returncode == 0, done.stderr[-4000:]
  cells = json.loads((tmp_path / path.name).read_text())["cells"]
  errors = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]
  assert not errors
  if path.name in ("01_quickstart.ipynb", "06_your_model.ipynb"):  # the report, displayed
    html = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])
            if "text/html" in o.get("data", {}) and "<iframe srcdoc=" in "".join(o["data"]["text/html"])]
    assert html, f"{path.name} displays no report"


@pytest.mark.slow
def test_colab_cell_stops_in_one_line_without_repo_url(tmp_path):
  """REPO_URL empty where regularity_jax is not importable: one line, no traceback."""
  from nbclient import NotebookClient  # pylint: disable=g-import-not-at-top
  import nbformat  # pylint: disable=g-import-not-at-top
  nb = nbformat.v4.new_notebook()
  nb.cells = [nbformat.v4.new_code_cell(
      "import pathlib, sys  # hide the installed regularity_jax, as in a fresh Colab\n"
      "sys.meta_path = [f for f in sys.meta_path if 'editable' not in getattr(f, '__module__', '')]\n"
      "sys.path = [p for p in sys.path if not pathlib.Path(p or '.', 'regularity_jax').exists()]"),
              nbformat.v4.new_code_cell(INSTALL_CELL)]
  client = NotebookClient(nb, timeout=120, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}}, allow_errors=True)
  client.execute()
  errors = [o for o in nb.cells[1].outputs if o.get("output_type") == "error"]
  assert len(errors) == 1 and errors[0]["traceback"] == [
      "error: regularity_jax is not installed: set REPO_URL in this cell to the repository's "
      "git address and run it again"], errors


@pytest.mark.slow
def test_colab_cell_installs_from_repo_url(tmp_path):
  """The cell with REPO_URL = file:// of a fresh clone, in an environment that has jax (as
  Colab has) and not regularity_jax: pip installs regularity_jax from the clone and leaves jax
  and jaxlib where they were. The environment: a venv whose site-packages sees this one's
  packages through a .pth line (so nothing is downloaded but pip's build backend), without the
  editable install of this checkout."""
  clone = tmp_path / "clone"
  subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
  subprocess.run(["git", "-C", str(clone), "checkout", "-q", "--detach"], check=True)
  # Uncommitted work of this checkout is not in the clone: its committed HEAD is what installs.
  venv = tmp_path / "colab"
  subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
  python = venv / "bin" / "python"
  site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        capture_output=True, text=True, check=True).stdout.strip()
  ours = [p for p in sys.path if p.endswith("-packages") and pathlib.Path(p).is_dir()]
  pathlib.Path(site, "host_packages.pth").write_text("\n".join(ours) + "\n")
  cell = INSTALL_CELL.replace('REPO_URL = ""', f'REPO_URL = "file://{clone}"')
  probe = ("import jax, jaxlib, regularity_jax.configs.quickstart\n"
           "print('jax', jax.__version__, jax.__file__)\nprint('package', regularity_jax.__file__)")
  done = subprocess.run([str(python), "-c", cell + "\n" + probe], cwd=tmp_path,
                        env={k: v for k, v in _user_env().items() if k != "PIP_REQUIRE_VIRTUALENV"},
                        capture_output=True, text=True, timeout=900, check=False)
  assert done.returncode == 0, done.stderr[-4000:]
  lines = dict(l.split(" ", 1) for l in done.stdout.splitlines() if " " in l)
  import jax  # pylint: disable=g-import-not-at-top
  assert lines["jax"] == f"{jax.__version__} {jax.__file__}"  # the host's jax, untouched
  assert lines["package"].startswith(site), lines  # installed into the venv, from the clone
