"""The README's promises: at most 200 lines, the two opening commands, the CI script, the kernel
examples run (the README's and docs/kernels.md's), and every relative link names a file."""

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
KERNELS = (REPO / "docs" / "kernels.md").read_text()


def _code_blocks(lang, text=README):
  return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_at_most_200_lines():
  assert len(README.splitlines()) <= 200


def test_opens_with_two_commands_and_ci_runs_the_second():
  bash = _code_blocks("bash")
  install_and_run, install_and_test = bash[0].strip(), bash[1].strip()
  assert "pip install -e . && python -m regularity_jax.main --config=regularity_jax/configs/quickstart.py" in install_and_run
  assert README.index(install_and_run) < README.index("## ")  # before the first section
  install, test_command = [p.strip() for p in install_and_test.rsplit("&&", 1)]
  assert install.endswith("pip install -e '.[dev]'")  # installs what the tests need
  assert test_command == "bash tests/run.sh"
  ci = (REPO / ".ci" / "run").read_text()
  assert test_command in ci and "'.[dev,tfds]'" in ci and "'.[dev,docs]'" in ci
  tiers = (REPO / "tests" / "run.sh").read_text()
  assert 'pytest tests -q -n 2 --dist loadgroup -m "$mark"' in tiers
  assert 'all) tier_ fast "not slow" "$@"; tier_ slow slow "$@"' in tiers  # both tiers


def test_relative_links_name_files():
  for text, base in ((README, REPO), *((p.read_text(), p.parent) for p in (REPO / "docs").glob("*.md"))):
    for target in re.findall(r"\]\(([^)#\s]+)[^)]*\)", text):
      if "://" in target:
        continue
      path = (base / target).resolve()
      assert path.exists(), target


def test_kernel_example_runs_as_written(capsys):
  example = _code_blocks("python")[0]
  assert example == _code_blocks("python", KERNELS)[0]  # the same as docs/kernels.md's
  exec(compile(example, "README.md", "exec"), {})  # pylint: disable=exec-used
  printed = capsys.readouterr().out.split()
  assert len(printed) == 2 and int(printed[0]) >= 0


def test_nnx_example_runs_as_written(capsys):
  example = _code_blocks("python", KERNELS)[1]
  assert "nnx.jit" in example
  exec(compile(example, "docs/kernels.md", "exec"), {})  # pylint: disable=exec-used
  assert capsys.readouterr().out.split() == ["320", "0"]  # 5 epochs x 64 examples, none dropped


def test_the_test_command_keeps_a_group_on_one_worker(tmp_path):
  """tests/run.sh's `-n 2 --dist loadgroup` sends the tests of one xdist_group (those sharing a
  run, tests/conftest.py SHARED_RUNS) to one worker, which builds the run once. Under pytest 9
  xdist's own group suffix has no effect (tests/conftest.py _GroupSuffix); here six grouped
  tests, interleaved with twelve others, must carry it and all run on one worker."""
  import os  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  (tmp_path / "conftest.py").write_text(
      "from tests.conftest import _GroupSuffix\n"
      "def pytest_configure(config):\n"
      "  config.pluginmanager.register(_GroupSuffix(), 'group_suffix')\n")
  (tmp_path / "test_grouped.py").write_text(
      "import os, pathlib, time, pytest\n"
      "CASES = [pytest.param(k, marks=pytest.mark.xdist_group('shared')) if k % 3 == 0 else k\n"
      "         for k in range(18)]\n"
      "@pytest.mark.parametrize('k', CASES)\n"
      "def test_one(k, request):\n"
      "  if k % 3 == 0:\n"
      "    assert request.node.nodeid.endswith('@shared'), request.node.nodeid\n"
      "    out = pathlib.Path(__file__).parent / f'ran_{k}.txt'\n"
      "    out.write_text(os.environ['PYTEST_XDIST_WORKER'])\n"
      "  time.sleep(0.05)\n")
  done = subprocess.run(
      [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p",
       "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
      cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
      capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
  workers = {p.read_text() for p in tmp_path.glob("ran_*.txt")}
  assert len(list(tmp_path.glob("ran_*.txt"))) == 6 and len(workers) == 1, workers
