r"""The no-change guarantee: the same small runs on two versions of the code give the same bits.

  python -m benchmarks.no_change --base=05bb32c --head=HEAD [--out=/tmp/no_change]
  python -m benchmarks.no_change --base=/path/to/worktree_a --head=/path/to/worktree_b

Each of --base and --head is a git commit of this repository (checked out with `git worktree add
--detach` under --out) or a folder holding a checkout. Both run in this interpreter's venv, each
with its own tree first on PYTHONPATH, one subprocess per run: the quickstart's `:smoke`
(mnist1d, generated) and the tiny fixture (tests/engine_fixtures.py) with a few features. Then
scores.npz is compared key by key (names, dtypes, shapes, bits; its provenance as JSON: base's
keys with the same values, new keys allowed; the tiny fixture's dataset name excepted, which
"Your data" made its .npz's) and metrics.jsonl record by record, except the timing keys
(`TIMING_KEYS`). It prints one line per run and exits 1 on any
difference.

Runtime (2 shared CPU cores): about 1 minute per run and version.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

TIMING_KEYS = frozenset({"train_time_s", "eval_time_s"})
QUIET = ["--config.progress_bar=False", "--config.plots=False", "--config.report=False"]

# name -> overrides of the tiny fixture's config (tiny_config's flattened keys).
TINY_RUNS = {
    "tiny_mlp": {"num_epochs": 2},
    "tiny_turnover": {"num_epochs": 2, "turnover.enabled": True},
    "tiny_two_seeds": {"num_epochs": 2, "num_seeds": 2},
    "tiny_small_cnn_margins": {"num_epochs": 2, "model": "small_cnn",
                               "model_kwargs": {"widths": (4, 8)}},
    "tiny_toneva_turnover_seeds": {"num_epochs": 2, "model": "toneva_cnn",
                                   "turnover.enabled": True, "num_seeds": 2},
}

_TINY_DRIVER = """
import sys, json
from tests import engine_fixtures
from regularity_jax.training import train_and_evaluate
data, workdir, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
kwargs = overrides.pop("model_kwargs", {})
config = engine_fixtures.tiny_config(data, **overrides)
if config.model != "mlp":
  del config.model_kwargs["hidden"]  # the fixture's mlp width
config.model_kwargs.update({k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})
train_and_evaluate(config, workdir)
"""

# The tiny data declare 10 classes (4 used): the fixture names them "mnist" on main (05bb32c)
# and by path since "Your data" (its classes from the data): both trees train 10 logits.
_TINY_DATA = """
import sys
import numpy as np
from tests import engine_fixtures
path = engine_fixtures.write_tiny_npz(sys.argv[1], shape=(16, 16, 1))
with np.load(path) as z:
  arrays = dict(z)
np.savez(path, class_names=np.asarray([str(c) for c in range(10)]), **arrays)
"""


def checkout(repo: pathlib.Path, ref: str, out: pathlib.Path) -> pathlib.Path:
  """`ref` as a folder: itself if it is one, else a detached worktree of that commit."""
  if pathlib.Path(ref).is_dir():
    return pathlib.Path(ref).resolve()
  commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", ref], check=True,
                          capture_output=True, text=True).stdout.strip()
  tree = out / f"tree_{commit}"
  if not tree.exists():
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), commit],
                   check=True, capture_output=True)
  return tree


def _python(tree: pathlib.Path, args: list[str]) -> None:
  env = dict(os.environ, PYTHONPATH=str(tree), JAX_PLATFORMS="cpu")
  done = subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True,
                        text=True)
  if done.returncode:
    raise RuntimeError(f"{tree}: {' '.join(args[:3])} failed:\n{done.stderr[-3000:]}")


def run_all(tree: pathlib.Path, out: pathlib.Path, data: pathlib.Path) -> dict[str, pathlib.Path]:
  """Every run of the matrix in `tree`; returns {run name: its workdir}."""
  runs = {}
  workdir = out / "quickstart_smoke"
  if not (workdir / "scores.npz").exists():
    _python(tree, ["-m", "experiments.main", "--config=experiments/configs/quickstart.py:smoke",
                   f"--workdir={workdir}", *QUIET])
  runs["quickstart_smoke"] = workdir
  for name, overrides in TINY_RUNS.items():
    workdir = out / name
    if not (workdir / "scores.npz").exists():
      _python(tree, ["-c", _TINY_DRIVER, str(data), str(workdir), json.dumps(overrides)])
    runs[name] = workdir
  return runs


# Provenance entries that name the dataset as the fixture gives it: "mnist" on main, the .npz's
# name and path since "Your data" (the tiny fixture only; built-in datasets keep theirs).
FIXTURE_NAMING = frozenset({"dataset"})


def compare_provenance(base: str, head: str, tiny: bool) -> list[str]:
  """Differences between two provenance JSONs: every key of base must hold the same value in
  head; keys only in head are additions (allowed)."""
  x, y = json.loads(base), json.loads(head)
  return [f"provenance.{k}: {x[k]!r} vs {y.get(k, '<unset>')!r}" for k in sorted(x)
          if x[k] != y.get(k, "<unset>") and not (tiny and k in FIXTURE_NAMING)]


def compare_scores(a: pathlib.Path, b: pathlib.Path, tiny: bool = False) -> list[str]:
  """Differences between two scores.npz: names, then dtype, shape and bits of each column; the
  provenance as JSON (additions allowed, `compare_provenance`)."""
  with np.load(a) as x, np.load(b) as y:
    diffs = [f"only in base: {k}" for k in sorted(set(x.files) - set(y.files))]
    diffs += [f"only in head: {k}" for k in sorted(set(y.files) - set(x.files))]
    for k in sorted(set(x.files) & set(y.files)):
      u, v = x[k], y[k]
      if k == "provenance":
        diffs += compare_provenance(str(u), str(v), tiny)
        continue
      if u.dtype != v.dtype or u.shape != v.shape:
        diffs.append(f"{k}: {u.dtype}{list(u.shape)} vs {v.dtype}{list(v.shape)}")
      elif u.dtype == object:
        if not all(p == q for p, q in zip(u.ravel(), v.ravel())):
          diffs.append(f"{k}: values differ")
      elif u.tobytes() != v.tobytes():
        diffs.append(f"{k}: bits differ")
  return diffs


def compare_metrics(a: pathlib.Path, b: pathlib.Path) -> list[str]:
  """Differences between two metrics.jsonl, record by record, timing keys left out."""
  def records(path):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}
            for line in path.read_text().splitlines() if line.strip()]
  x, y = records(a), records(b)
  if len(x) != len(y):
    return [f"{len(x)} vs {len(y)} records"]
  diffs = []
  for i, (r, s) in enumerate(zip(x, y)):
    keys = sorted(k for k in set(r) | set(s) if r.get(k, "<unset>") != s.get(k, "<unset>"))
    diffs += [f"record {i}: {k}" for k in keys]
  return diffs


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--base", required=True, help="commit or checkout folder")
  parser.add_argument("--head", required=True, help="commit or checkout folder")
  parser.add_argument("--out", default="", help="where the worktrees and runs go (default: temp)")
  args = parser.parse_args(argv)
  repo = pathlib.Path(__file__).resolve().parents[1]
  out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="no_change_")).resolve()
  out.mkdir(parents=True, exist_ok=True)
  trees = {side: checkout(repo, ref, out) for side, ref in (("base", args.base),
                                                              ("head", args.head))}
  data = out / "tiny_data"
  if not (data / "tiny.npz").exists():
    _python(trees["base"], ["-c", _TINY_DATA, str(data)])
  results = {side: run_all(tree, out / side, data) for side, tree in trees.items()}
  print(f"base {trees['base']}\nhead {trees['head']}")
  failed = False
  for name, base_dir in results["base"].items():
    head_dir = results["head"][name]
    diffs = (compare_scores(base_dir / "scores.npz", head_dir / "scores.npz",
                            tiny=name.startswith("tiny"))
             + compare_metrics(base_dir / "metrics.jsonl", head_dir / "metrics.jsonl"))
    with np.load(base_dir / "scores.npz") as scores:
      columns = len(scores.files)
    records = len((base_dir / "metrics.jsonl").read_text().splitlines())
    status = "identical" if not diffs else f"DIFFERENT: {'; '.join(diffs[:6])}"
    print(f"{name:28s} scores.npz {columns} columns, metrics.jsonl {records} records: {status}")
    failed |= bool(diffs)
  return int(failed)


if __name__ == "__main__":
  sys.exit(main())
