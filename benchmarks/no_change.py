r"""The no-change guarantee: the same runs on two versions of the code give the same bits.

  python -m benchmarks.no_change --base=05bb32c --head=HEAD [--out=/tmp/no_change] \
      [--only='matrix/*,smoke/quickstart'] [--jobs=2] [--side=both|base|head] [--list]

Each of --base and --head is a git commit of this repository (checked out with `git worktree add
--detach` under --out) or a folder holding a checkout. Both run in this interpreter's venv, each
with its own tree first on PYTHONPATH. The runs (`--list` prints them):

  smoke/<config>   every shipped experiments/configs/*.py at `:smoke`, with the data flags of
                   its docstring's command (experiments.main)
  study/<name>     every experiments/studies/<name> at `:smoke` (experiments.study; each of its
                   training runs is compared)
  tiny/<name>      the tiny fixture (tests/engine_fixtures.py, 16x16x1) with a few models
                   (`TINY_RUNS`: the mlp, turn-over, 2 seeds, small_cnn margins, toneva_cnn)
  matrix/<group>-<input>-s<seeds>-d<devices>
                   the feature matrix on the tiny fixture: each group of features that coexist
                   (`GROUPS`: every feature and prioritization method) x input device or
                   stream x 1 or 2 seeds x 1 or 4 (fake CPU) devices (a combination the
                   engine refuses, e.g. 2 seeds with a prioritization method, compares the
                   refusal's line)

The data the configs and studies read is found as their commands say, `../shared/data/...`
from the working directory: each side runs in a folder next to a link `shared` to
--shared (default: the repository's ../shared). Runs go in batches (one process per batch of
tiny runs with the same device count; one per config or study), --jobs at a time; a run whose
scores.npz (or refusal) exists is not rerun, so a second call resumes or adds runs. Then, per
run, scores.npz is compared key by key (names, dtypes, shapes, bits) and metrics.jsonl record
by record, except the timing keys (`TIMING_KEYS`); a run both versions refuse compares its
one-line errors. It prints one line per run and exits 1 on any difference.

Runtime (2 shared CPU cores): a tiny run is 10-30 s, a config's smoke 1-2 minutes, a study's
smoke 2-5 minutes, per version; benchmarks/RESULTS_no_change_cpu.md has a measured call.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fnmatch
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

TIMING_KEYS = frozenset({"train_time_s", "eval_time_s"})
# What main gained between 05bb32c and this branch point from other issues: issue 30
# (8a5a0b2) added the first_forgotten columns and the provenance's permute_pixels entry (None
# when off). A column or entry only the head has and that matches is listed, not a difference
# (--strict: a difference); everything both versions have is compared. --base=8a5a0b2 (main
# just before issue 32 was merged) has them too.
# Issue 33 ("Your data") added the provenance's data_identity (any value: the data's identity).
ADDED_COLUMNS = re.compile(r"(^|/)(eval_)?first_forgotten$")
ANY = object()
ADDED_PROVENANCE = {"permute_pixels": None, "data_identity": ANY}
# Provenance entries that name the dataset as the tiny fixture gives it: "mnist" on 05bb32c, the
# .npz's path since "Your data". The tiny runs name it "mnist" in its folder on both sides (the
# same config); a base side whose fixture named it by path would differ only here.
FIXTURE_NAMING = frozenset({"dataset"})
QUIET = ["--config.progress_bar=False", "--config.plots=False", "--config.report=False"]
REPO = pathlib.Path(__file__).resolve().parents[1]
NEW = "not in this version"  # a config or study the base does not have: nothing to compare

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

# Every feature and prioritization method of the engine (as tests/test_streaming.py's FEATURES;
# seeds, input and devices are the matrix's other axes). "{scores}" is the base's tiny/tiny_mlp
# scores.npz: a scores file made by the base version, read by both.
FEATURES = {
    "uniform": {},
    "augment": {"augment": True, "crop_padding": 2},
    "selective_backprop": {"prioritization": "selective_backprop"},
    "importance": {"prioritization": "importance"},
    "infobatch": {"prioritization": "infobatch"},
    "noise_aware": {"prioritization": "noise_aware", "prioritization_options.noise_warmup": 1},
    "rho_loss": {"prioritization": "rho_loss", "holdout.fraction": 0.25,
                 "prioritization_options.rho_il_epochs": 1,
                 "prioritization_options.rho_candidates": 2},
    "pruning": {"pruning.fraction_kept": 0.5, "pruning.score": "random"},
    "pruning_by_scores": {"pruning.fraction_kept": 0.5, "pruning.score": "forgetting",
                          "pruning.scores_path": "{scores}"},
    "weighting": {"weighting.scheme": "easy_first", "weighting.start_epoch": 1},
    "weighting_from_scores": {"weighting.scheme": "hard_first", "weighting.score": "el2n",
                              "weighting.scores_path": "{scores}"},
    "reduction": {"reduction.enabled": True, "reduction.threshold": 0.0,
                  "reduction.fraction": 0.5},
    "turnover": {"turnover.enabled": True},
    "holdout": {"holdout.folds": 3, "holdout.fold": 1},
    "aum_threshold": {"aum_threshold.set": 1},
    "corruption": {"corruption.kind": "symmetric", "corruption.fraction": 0.25},
    "schedule_examples": {"schedule_clock": "examples", "schedule": "cosine"},
}

# Features that coexist run together (each prioritization method needs a run of its own;
# rho_loss's holdout excludes the folds); every feature is in one group, and those that take 2
# seeds in a second one run with 2 seeds only.
GROUPS = {
    "uniform_pruning": ("uniform", "pruning"),
    "sb_weighting_holdout_corruption_augment": (
        "selective_backprop", "weighting", "holdout", "corruption", "augment",
        "schedule_examples"),
    "importance_aum_threshold": ("importance", "aum_threshold"),
    "infobatch_turnover_reduction": ("infobatch", "turnover", "reduction"),
    "noise_aware": ("noise_aware",),
    "rho_loss": ("rho_loss",),
    "scores_path": ("pruning_by_scores", "weighting_from_scores"),
    # num_seeds=2 refuses the prioritization methods but uniform, reduction and running
    # weighting (one line, compared): the features that do take 2 seeds, again with 2 seeds.
    "seeds_turnover_holdout_corruption_augment_schedule": (
        "turnover", "holdout", "corruption", "augment", "schedule_examples"),
}
GROUP_SEEDS = {"seeds_turnover_holdout_corruption_augment_schedule": (2,)}
INPUTS = ("device", "stream")
SEEDS = (1, 2)
DEVICES = (1, 4)

_TINY_DRIVER = """
import json, pathlib, sys, traceback
from tests import engine_fixtures
from regularity_jax.training import train_and_evaluate
data = sys.argv[1]
for workdir, overrides in json.loads(sys.argv[2]):
  workdir = pathlib.Path(workdir)
  error = workdir.parent / (workdir.name + ".error")
  if (workdir / "scores.npz").exists() or error.exists():
    continue
  kwargs = overrides.pop("model_kwargs", {})
  try:
    config = engine_fixtures.tiny_config(data, **overrides)
    config.dataset, config.data_dir = "mnist", data  # as 05bb32c's fixture named it, on both
    if config.model != "mlp":
      del config.model_kwargs["hidden"]  # the fixture's mlp width
    config.model_kwargs.update({k: tuple(v) if isinstance(v, list) else v
                                for k, v in kwargs.items()})
    train_and_evaluate(config, workdir)
  except Exception as e:  # a refusal: compared between the versions
    if workdir.exists() and any(workdir.iterdir()):
      traceback.print_exc()
    error.write_text(f"{type(e).__name__}: {e}".split("\\n")[0])
"""

# The tiny data declare 10 classes (4 used): the fixture names them "mnist" on 05bb32c and by
# path since "Your data" (its classes from the data): both versions train 10 logits.
_TINY_DATA = """
import sys
import numpy as np
from tests import engine_fixtures
path = engine_fixtures.write_tiny_npz(sys.argv[1], shape=(16, 16, 1))
with np.load(path) as z:
  arrays = dict(z)
np.savez(path, class_names=np.asarray([str(c) for c in range(10)]), **arrays)
"""


def _marker(workdir: pathlib.Path, suffix: str) -> pathlib.Path:
  """The file beside a run's workdir that says it is done, refused (.error) or logged."""
  return workdir.parent / (workdir.name + suffix)


def _smoke_flags(path: pathlib.Path) -> list[str]:
  """The --config flags of `path`'s `:smoke` command in its docstring (its data dirs from any
  command when no command names `:smoke`). A shim of experiments/ (issue 37) is read through
  to the file it loads, regularity_jax/<configs|studies>/..."""
  try:
    moved = REPO / "regularity_jax" / pathlib.Path(path).resolve().relative_to(REPO / "experiments")
  except ValueError:
    moved = None
  text = (moved if moved is not None and moved.is_file() else pathlib.Path(path)).read_text()
  commands = re.findall(r"python -m experiments\.\w+ (?:[^\n]*\\\n)*[^\n]*", text)
  commands = [shlex.split(c.replace("\\\n", " ")) for c in commands]
  smoke = [c for c in commands if any(a.startswith("--config=") and a.endswith(":smoke")
                                      for a in c)]
  if smoke:
    return [a for a in smoke[0] if a.startswith("--config.")]
  return sorted({a for c in commands for a in c if re.match(r"--config\.[\w.]*_dir=", a)})


def all_runs() -> dict[str, dict]:
  """{name: how to run it} of the whole matrix (see the module docstring)."""
  runs = {}
  for path in sorted((REPO / "experiments" / "configs").glob("[!_]*.py")):
    runs[f"smoke/{path.stem}"] = {"kind": "main", "config": f"experiments/configs/{path.name}",
                                  "flags": _smoke_flags(path)}
  for path in sorted((REPO / "experiments" / "studies").glob("*/config.py")):
    runs[f"study/{path.parent.name}"] = {
        "kind": "study", "config": f"experiments/studies/{path.parent.name}/config.py",
        "flags": _smoke_flags(path)}
  for name, overrides in TINY_RUNS.items():
    runs[f"tiny/{name}"] = {"kind": "tiny", "overrides": overrides, "devices": 1}
  for group, features in GROUPS.items():
    overrides = {k: v for f in features for k, v in FEATURES[f].items()}
    for pipeline in INPUTS:
      for seeds in GROUP_SEEDS.get(group, SEEDS):
        for devices in DEVICES:
          runs[f"matrix/{group}-{pipeline}-s{seeds}-d{devices}"] = {
              "kind": "tiny", "devices": devices,
              "overrides": {"num_epochs": 2, **overrides, "input_pipeline": pipeline,
                            "num_seeds": seeds}}
  return runs


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


def _python(tree: pathlib.Path, args: list[str], cwd: pathlib.Path, devices: int = 1,
            log: pathlib.Path | None = None) -> str:
  """Runs `python args` with `tree` first on PYTHONPATH; '' or the error's last lines."""
  env = dict(os.environ, PYTHONPATH=str(tree), JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  if devices > 1:
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                        text=True)
  if log:
    log.write_text(done.stdout + done.stderr)
  return "" if done.returncode == 0 else done.stderr[-3000:]


def _jobs(tree, side_out, data, runs, base_scores, cwd, batch):
  """The processes of one side: [(description, thunk)]."""
  jobs = []
  for name, run in runs.items():
    workdir = side_out / name
    base_error = _marker(side_out.parent / "base" / name, ".error")
    if base_error.exists() and base_error.read_text() == NEW:
      continue  # nothing to compare it with
    if run["kind"] in ("main", "study") and not _marker(workdir, ".done").exists():
      module = "experiments.main" if run["kind"] == "main" else "experiments.study"
      args = ["-m", module, f"--config={tree / run['config']}:smoke", f"--workdir={workdir}",
              *run["flags"], *(QUIET if run["kind"] == "main" else [])]

      def thunk(args=args, workdir=workdir, config=tree / run["config"]):
        workdir.parent.mkdir(parents=True, exist_ok=True)
        if not config.exists():
          _marker(workdir, ".error").write_text(NEW)
          return
        error = _python(tree, args, cwd, log=_marker(workdir, ".log"))
        (_marker(workdir, ".error") if error else _marker(workdir, ".done")).write_text(
            error.strip().splitlines()[-1] if error else "")
      jobs.append((name, thunk))
  for devices in DEVICES:
    todo = [(str(side_out / name), json.loads(json.dumps(run["overrides"]).replace(
        '"{scores}"', json.dumps(str(base_scores)))))
            for name, run in runs.items() if run["kind"] == "tiny" and run["devices"] == devices
            and not (side_out / name / "scores.npz").exists()
            and not _marker(side_out / name, ".error").exists()]
    for i in range(0, len(todo), batch):
      chunk = todo[i:i + batch]
      for w, _ in chunk:
        pathlib.Path(w).parent.mkdir(parents=True, exist_ok=True)

      def thunk(chunk=chunk, devices=devices):
        error = _python(tree, ["-c", _TINY_DRIVER, str(data), json.dumps(chunk)], cwd, devices)
        if error:
          print(f"{tree}: a batch failed:\n{error}", file=sys.stderr)
      jobs.append((f"{len(chunk)} tiny runs on {devices} device(s)", thunk))
  return jobs


def compare_scores(a: pathlib.Path, b: pathlib.Path, strict: bool = False,
                   added: list[str] | None = None, roots: tuple[str, str] = ("", ""),
                   tiny: bool = False) -> list[str]:
  """Differences between two scores.npz: names, then dtype, shape and bits of each column.
  Unless `strict`, head-only columns of `ADDED_COLUMNS` go to `added` instead, and the
  provenance is compared without head-only `ADDED_PROVENANCE` entries of their value. The
  provenance's paths under the runs' own folders (`roots`: a study writes derived data there)
  are compared relative to them; `tiny`: the tiny fixture's runs (`FIXTURE_NAMING` left out)."""
  added = [] if added is None else added
  with np.load(a, allow_pickle=False) as x, np.load(b, allow_pickle=False) as y:
    diffs = [f"only in base: {k}" for k in sorted(set(x.files) - set(y.files))]
    for k in sorted(set(y.files) - set(x.files)):
      if not strict and ADDED_COLUMNS.search(k):
        added.append(k)
      else:
        diffs.append(f"only in head: {k}")
    for k in sorted(set(x.files) & set(y.files)):
      u, v = x[k], y[k]
      if k == "provenance" and not strict and u.shape == v.shape == ():
        p, q = (json.loads(str(w).replace(r, "<run>") if r else str(w))
                for w, r in ((u, roots[0]), (v, roots[1])))
        for entry, value in ADDED_PROVENANCE.items():
          if entry not in p and entry in q and (value is ANY or q[entry] == value):
            del q[entry]
            added.append(f"provenance.{entry}")
        if tiny:
          for entry in FIXTURE_NAMING:
            p.pop(entry, None), q.pop(entry, None)
        if p != q:
          diffs.append("provenance: values differ")
      elif u.dtype != v.dtype or u.shape != v.shape:
        diffs.append(f"{k}: {u.dtype}{list(u.shape)} vs {v.dtype}{list(v.shape)}")
      elif u.tobytes() != v.tobytes():
        diffs.append(f"{k}: bits differ")
  return diffs


def compare_metrics(a: pathlib.Path, b: pathlib.Path) -> list[str]:
  """Differences between two metrics.jsonl, record by record, timing keys left out."""
  def records(path):  # NaN as a string: NaN == NaN here
    return [{k: "NaN" if isinstance(v, float) and v != v else v
             for k, v in json.loads(line).items() if k not in TIMING_KEYS}
            for line in path.read_text().splitlines() if line.strip()]
  x, y = records(a), records(b)
  if len(x) != len(y):
    return [f"{len(x)} vs {len(y)} records"]
  diffs = []
  for i, (r, s) in enumerate(zip(x, y)):
    keys = sorted(k for k in set(r) | set(s) if r.get(k, "<unset>") != s.get(k, "<unset>"))
    diffs += [f"record {i}: {k}" for k in keys]
  return diffs


def compare_run(base: pathlib.Path, head: pathlib.Path, strict: bool = False,
                tiny: bool = False) -> tuple[str, bool]:
  """(one line, differs) for one run of the matrix in both versions."""
  errors = [_marker(p, ".error") for p in (base, head)]
  if any(e.exists() for e in errors):
    texts = [e.read_text().strip() if e.exists() else "<ran>" for e in errors]
    if texts[0] == NEW:
      return "new since base: not compared", False
    if texts[0] == texts[1]:
      return f"refused by both, the same line: {texts[0][:150]}", False
    return f"DIFFERENT outcome: base {texts[0][:120]!r}, head {texts[1][:120]!r}", True
  # A run's scores.npz and metrics.jsonl; a study's, one per training run.
  found = sorted(p.parent.relative_to(base) for p in base.rglob("scores.npz"))
  if not found:
    return "MISSING in base", True
  diffs, columns, records, added = [], 0, 0, []
  for rel in found:
    a, b = base / rel, head / rel
    if not (b / "scores.npz").exists():
      diffs.append(f"{rel}: no scores.npz in head")
      continue
    diffs += [f"{rel}/{d}" if str(rel) != "." else d
              for d in compare_scores(a / "scores.npz", b / "scores.npz", strict, added,
                                      (str(base), str(head)), tiny)
              + compare_metrics(a / "metrics.jsonl", b / "metrics.jsonl")]
    with np.load(a / "scores.npz") as scores:
      columns += len(scores.files)
    records += len((a / "metrics.jsonl").read_text().splitlines())
  extra = sorted(p.parent.relative_to(head) for p in head.rglob("scores.npz"))
  diffs += [f"{rel}: only in head" for rel in extra if rel not in found]
  runs = f"{len(found)} runs, " if len(found) > 1 or str(found[0]) != "." else ""
  what = f"{runs}scores.npz {columns} columns, metrics.jsonl {records} records"
  names = sorted({a.rsplit("/", 1)[-1] for a in added})
  extra = f" (head adds {len(added)}: {', '.join(names)})" if added else ""
  return (f"{what}: " + ("identical" + extra if not diffs
                          else f"DIFFERENT: {'; '.join(diffs[:6])}"), bool(diffs))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--base", default="05bb32c", help="commit or checkout folder")
  parser.add_argument("--head", default="HEAD", help="commit or checkout folder")
  parser.add_argument("--out", default="", help="where the worktrees and runs go (default: temp)")
  parser.add_argument("--only", default="*", help="comma-separated patterns of run names")
  parser.add_argument("--jobs", type=int, default=1, help="processes at a time (2 on 2 cores)")
  parser.add_argument("--batch", type=int, default=6, help="tiny runs per process")
  parser.add_argument("--side", default="both", choices=("both", "base", "head"),
                      help="run one side only (no comparison), e.g. the base ahead of time")
  parser.add_argument("--shared", default=str(REPO.parent / "shared"),
                      help="the folder whose data/ the configs' ../shared/data/... name")
  parser.add_argument("--list", action="store_true", help="print the run names and exit")
  parser.add_argument("--strict", action="store_true",
                      help="head-only columns of ADDED_COLUMNS are differences too")
  args = parser.parse_args(argv)
  patterns = args.only.split(",")
  runs = {n: r for n, r in all_runs().items() if any(fnmatch.fnmatch(n, p) for p in patterns)}
  if args.list:
    print("\n".join(runs))
    return 0
  if not runs:
    parser.error(f"--only={args.only} matches no run; see --list")
  out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="no_change_")).resolve()
  out.mkdir(parents=True, exist_ok=True)
  sides = ("base", "head") if args.side == "both" else (args.side,)
  trees = {side: checkout(REPO, getattr(args, side), out) for side in ("base", "head")
           if side in sides or side == "base"}
  data = out / "tiny_data"
  if not (data / "tiny.npz").exists():
    _python(trees["base"], ["-c", _TINY_DATA, str(data)], trees["base"])
  cwd = out / "cwd"  # ../shared from here is --shared
  cwd.mkdir(exist_ok=True)
  if not (out / "shared").exists():
    (out / "shared").symlink_to(pathlib.Path(args.shared).resolve())
  base_scores = out / "base" / "tiny" / "tiny_mlp" / "scores.npz"
  if any("{scores}" in json.dumps(r.get("overrides", {})) for r in runs.values()):
    jobs = _jobs(trees["base"], out / "base", data, {"tiny/tiny_mlp": all_runs()["tiny/tiny_mlp"]},
                 base_scores, cwd, args.batch)
    for _, thunk in jobs:
      thunk()
  t0 = time.time()
  jobs = [job for side in sides for job in _jobs(trees[side], out / side, data, runs, base_scores,
                                                 cwd, args.batch)]
  with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
    for future in [pool.submit(thunk) for _, thunk in jobs]:
      future.result()
  print(f"base {trees['base']}\nhead {trees.get('head', '-')}\n{len(runs)} runs, "
        f"{len(jobs)} processes, {time.time() - t0:.0f} s")
  if args.side != "both":
    return 0
  failed = False
  for name in runs:
    line, differs = compare_run(out / "base" / name, out / "head" / name, args.strict,
                                tiny=name.startswith(("tiny/", "matrix/")))
    print(f"{name:60s} {line}")
    failed |= differs
  print("no difference" if not failed else "DIFFERENCES FOUND")
  return int(failed)


if __name__ == "__main__":
  sys.exit(main())
