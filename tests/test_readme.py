"""The README's promises: the two opening commands, the CI script, the kernel example runs."""

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _code_blocks(lang):
  return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_opens_with_two_commands_and_ci_runs_the_second():
  bash = _code_blocks("bash")
  install_and_run, install_and_test = bash[0].strip(), bash[1].strip()
  assert "experiments.main --config=experiments/configs/quickstart.py" in install_and_run
  assert README.index(install_and_run) < README.index("## ")  # before the first section
  test_command = install_and_test.split("&&")[-1].strip()  # what each CI job runs
  assert test_command == "bash tests/run.sh"
  assert test_command in (REPO / ".ci" / "run").read_text()
  tiers = (REPO / "tests" / "run.sh").read_text()
  assert 'pytest tests -q -n 2 --dist loadgroup -m "$mark"' in tiers
  assert 'all) tier_ fast "not slow" "$@"; tier_ slow slow "$@"' in tiers  # both tiers


def test_kernel_example_runs_as_written(capsys):
  example = _code_blocks("python")[0]
  exec(compile(example, "README.md", "exec"), {})  # pylint: disable=exec-used
  printed = capsys.readouterr().out.split()
  assert len(printed) == 2 and int(printed[0]) >= 0


def test_nnx_example_runs_as_written(capsys):
  example = _code_blocks("python")[1]
  assert "nnx.jit" in example
  exec(compile(example, "README.md", "exec"), {})  # pylint: disable=exec-used
  assert capsys.readouterr().out.split() == ["320", "0"]  # 5 epochs x 64 examples, none dropped
