r"""The Python half of `benchmarks/gpu_evidence.sh`: the environment, the tables it writes.

  python -m benchmarks.gpu_evidence env DIR                # DIR/env.json, one line printed
  python -m benchmarks.gpu_evidence toneva DIR RUN_DIR     # DIR/toneva_cifar10/summary.md
  python -m benchmarks.gpu_evidence merge DIR OUT.md       # RESULTS.md from the suite parts

DIR is the script's results folder: one `<part>.log` and `<part>.status` (JSON: rc, seconds,
limit) per part, `<part>.md` for the suite parts that finished. A part that hit its time limit
still contributes the table rows it printed before (marked "(part timed out)"). Standard
library only, except `env`, which imports jax (and torch, if the image has it).
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import re
import subprocess
import sys

SUITE_PARTS = ("suite_1_3_4", "suite_7", "suite_2", "suite_5_6")
COLUMNS = ("case", "variant", "batch", "img_per_s", "ratio")
LOSSY = ("CIFAR-10, JPEG q75 (a lossy copy: every image re-encoded as JPEG quality 75; "
         "../shared/data/cifar10_jpeg_q75)")


def _versions() -> dict[str, str]:
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  out = {"python": sys.version.split()[0]}
  for name in ("jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "flax", "optax",
               "orbax-checkpoint", "chex", "numpy", "ml_collections", "grain", "torch"):
    try:
      out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      pass
  return out


def env(directory: pathlib.Path) -> dict:
  """Device, versions, host and commit, written to DIR/env.json."""
  import jax  # pylint: disable=g-import-not-at-top
  dev = jax.devices()[0]
  info = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
          "device": f"{dev.device_kind} x{jax.device_count()} ({dev.platform})",
          "host": f"{platform.machine()}, {os.cpu_count()} CPU cores",
          "versions": _versions(), "commit": _commit(),
          "smoke": os.environ.get("GPU_EVIDENCE_SMOKE", "0") == "1"}
  try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                          "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    info["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
  except (OSError, subprocess.SubprocessError) as e:
    info["nvidia_smi"] = f"not available ({type(e).__name__})"
  try:
    import torch  # pylint: disable=g-import-not-at-top
    info["torch_cuda"] = f"{torch.version.cuda}, available={torch.cuda.is_available()}"
  except ImportError:
    info["torch_cuda"] = "torch not importable"
  (directory / "env.json").write_text(json.dumps(info, indent=2) + "\n")
  return info


def _commit() -> str:
  """The commit the tree came from: .whl/COMMIT (written by gpu_carry.sh, since the device's
  copy of the tree has no .git), else git, else 'unknown'."""
  stamp = pathlib.Path(".whl/COMMIT")
  if stamp.is_file():
    return stamp.read_text().strip()
  try:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         timeout=10)
    return out.stdout.strip() or "unknown"
  except (OSError, subprocess.SubprocessError):
    return "unknown"


def _status(directory: pathlib.Path, part: str) -> dict | None:
  path = directory / f"{part}.status"
  return json.loads(path.read_text()) if path.is_file() else None


def _rows_from_table(text: str) -> list[dict[str, str]]:
  rows = []
  for line in text.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if line.startswith("| ") and len(cells) == len(COLUMNS) and cells[0] != "case":
      rows.append(dict(zip(COLUMNS, cells)))
  return rows


def _rows_from_log(text: str) -> list[dict[str, str]]:
  """The rows `suite.Bench.add` printed (`case=... | variant=... | ...`)."""
  rows = []
  for line in text.splitlines():
    if not line.startswith("case="):
      continue
    fields = dict(f.split("=", 1) for f in line.split(" | ") if "=" in f)
    if set(COLUMNS) <= set(fields):
      rows.append({k: fields[k] for k in COLUMNS})
  return rows


def suite_rows(directory: pathlib.Path) -> tuple[list[dict[str, str]], list[str]]:
  """Every suite part's rows, in case order, and one note per part not (fully) measured."""
  rows, notes = [], []
  for part in SUITE_PARTS:
    status, md, log = (_status(directory, part), directory / f"{part}.md",
                       directory / f"{part}.log")
    if status and status["rc"] == 0 and md.is_file():
      rows += _rows_from_table(md.read_text())
      continue
    if status is None:
      notes.append(f"{part}: not run yet (left for a rerun)")
      continue
    partial = _rows_from_log(log.read_text(errors="replace")) if log.is_file() else []
    why = ("timed out" if status["rc"] in (124, 137) else f"failed, exit {status['rc']}")
    notes.append(f"{part}: {why} after {status['seconds']} s (limit {status['limit']} s); "
                 f"{len(partial)} rows it printed before are kept; see {part}.log")
    rows += [dict(r, variant=f"{r['variant']} (part {why})") for r in partial]
  rows.sort(key=lambda r: int(r["case"].split()[0]) if r["case"][:1].isdigit() else 99)
  return rows, notes


def _number(text: str) -> float | None:
  match = re.search(r"[-+]?\d+(\.\d+)?", text or "")
  return float(match.group()) if match else None


def targets(rows: list[dict[str, str]]) -> list[tuple[str, str, str]]:
  """(target, measured, verdict) for each target of benchmarks/README.md the rows allow."""
  out = []

  def find(case, variant_start, batch=None):
    return [r for r in rows if r["case"].startswith(case) and r["variant"].startswith(
        variant_start) and (batch is None or r["batch"] == str(batch))]

  def verdict(ok):
    return "met" if ok else "MISSED (phase timings: the part's log; reason: open)"

  for r in find("1 ", "tracked"):
    ratio = _number(r["ratio"])
    if ratio is not None:
      out.append((f"tracking overhead <= 2% (batch {r['batch']})", f"tracked/bare {ratio:.3f}",
                  verdict(ratio <= 1.02)))
  for r in find("2 ", "augment"):
    limit = {"128": 1.3, "512": 0.8}.get(r["batch"])
    seconds = _number(r["ratio"])
    if limit and seconds is not None:
      out.append((f"full epoch <= {limit} s (batch {r['batch']})", f"{seconds:.3f} s",
                  verdict(seconds <= limit)))
  for r in find("3 ", "vmap"):
    epochs = _number(r["ratio"])
    if epochs is not None:
      out.append(("GraNd over the training set <= 4 epochs", f"{epochs:.2f} epochs",
                  verdict(epochs <= 4)))
  for r in find("6 ", ""):
    if "vmapped" in r["variant"] and _number(r["ratio"]) is not None:
      out.append(("vmapped seeds >= 4x sequential throughput", r["ratio"],
                  verdict(_number(r["ratio"]) >= 4)))
  jax_rows = find("1 ", "tracked", 128)
  torch_rows = [r for r in find("7 ", "ResNet-18", 128) if _number(r["img_per_s"])]
  if jax_rows and torch_rows and _number(jax_rows[0]["img_per_s"]):
    best = max(torch_rows, key=lambda r: _number(r["img_per_s"]))
    ratio = _number(jax_rows[0]["img_per_s"]) / _number(best["img_per_s"])
    out.append(("JAX tracked step >= 2x the best PyTorch baseline (batch 128)",
                f"{ratio:.2f}x ({jax_rows[0]['img_per_s']} vs {best['img_per_s']} img/s, "
                f"{best['variant'].split(' + ')[0]})", verdict(ratio >= 2)))
  return out


def _table(header: list[str], rows: list[list[str]]) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def _header_lines(directory: pathlib.Path) -> list[str]:
  info = json.loads((directory / "env.json").read_text()) if (
      directory / "env.json").is_file() else {}
  versions = ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items())
  return [f"- date: {info.get('date', '?')}", f"- device: {info.get('device', '?')}; "
          f"nvidia-smi: {info.get('nvidia_smi', '?')}; host {info.get('host', '?')}",
          f"- versions: {versions}", f"- torch CUDA: {info.get('torch_cuda', '?')}",
          f"- commit: {info.get('commit', '?')}"]


def merge(directory: pathlib.Path, out: pathlib.Path) -> str:
  """RESULTS.md-ready text from the suite parts (and the targets they settle)."""
  rows, notes = suite_rows(directory)
  smoke = (directory / "env.json").is_file() and json.loads(
      (directory / "env.json").read_text()).get("smoke")
  parts = []
  for part in SUITE_PARTS:
    status = _status(directory, part)
    if status:
      parts.append(f"{part} {status['seconds']} s (exit {status['rc']}, call {status['call']})")
  text = "\n".join([
      "# Benchmarks (" + ("cpu_smoke preset: a REHEARSAL, no GPU number" if smoke else
                          "h100 preset") + ")", "",
      *_header_lines(directory),
      "- command: bash benchmarks/gpu_evidence.sh (parts: python -m benchmarks.suite "
      f"--preset={'cpu_smoke' if smoke else 'h100'} --cases=...; median of the suite's "
      "timed runs after one warm-up, synthetic data of the real shapes)",
      f"- parts: {'; '.join(parts) or 'none yet'}",
      *[f"- not measured: {n}" for n in notes], "",
      _table(list(COLUMNS), [[r[c] for c in COLUMNS] for r in rows]),
      "## Targets (benchmarks/README.md)", "",
      _table(["target", "measured", "verdict"], [list(t) for t in targets(rows)])
      if not smoke else "Not judged: a CPU rehearsal says nothing about the GPU targets.\n"])
  out.write_text(text)
  return text


def toneva(directory: pathlib.Path, run_dir: pathlib.Path) -> str:
  """DIR/toneva_cifar10/: the partial run's summary.md, metrics.jsonl, config.json and
  wall_time.json (no checkpoints: too large to bring back)."""
  dest = directory / "toneva_cifar10"
  dest.mkdir(parents=True, exist_ok=True)
  for name in ("metrics.jsonl", "config.json", "wall_time.json"):
    if (run_dir / name).is_file():
      (dest / name).write_bytes((run_dir / name).read_bytes())
  records = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()
             if l.strip()]
  config = json.loads((run_dir / "config.json").read_text())
  wall = json.loads((run_dir / "wall_time.json").read_text())
  seeds = int(config["num_seeds"])
  rows = []
  for r in records:
    per_seed = r.get("train_unforgettable_fraction_per_seed",
                     [r.get("train_unforgettable_fraction")])
    test = r.get("test_accuracy_per_seed", [r.get("test_accuracy")])
    rows.append([r["epoch"], f"{r['train_time_s']:.2f}", f"{r.get('eval_time_s', 0.0):.2f}",
                 " / ".join(f"{a:.4f}" for a in test if a is not None),
                 " / ".join(f"{u:.4f}" for u in per_seed if u is not None),
                 f"{r.get('train_unforgettable_fraction', float('nan')):.4f}"])
  steady = [r["train_time_s"] for r in records[1:]]
  info = json.loads((directory / "env.json").read_text()) if (
      directory / "env.json").is_file() else {}
  smoke = info.get("smoke")
  text = "\n".join([
      "# Toneva et al. CIFAR-10 protocol: a PARTIAL run on a lossy copy"
      + (" (CPU REHEARSAL, smoke sizes)" if smoke else ""), "",
      f"Data: {LOSSY}. A partial run: {len(records)} of {config['num_epochs']} epochs, stopped "
      f"by max_wall_time_s={config['max_wall_time_s']} (wall time including data loading and "
      "compilation). The unforgettable fractions below are those so far: after a few epochs "
      "most examples have not been forgotten yet, so they are NOT comparable with the paper's "
      "31.3% (200 epochs, exact CIFAR-10, 5 seeds summed) and must never be compared with it.",
      "", *_header_lines(directory),
      f"- config: experiments/configs/cifar10_resnet18.py{':smoke' if smoke else ''}, "
      f"num_seeds={seeds}, batch {config['batch_size']}, dtype {config['dtype']}, "
      f"train_subset={config['train_subset']}, test_subset={config['test_subset']}",
      f"- wall time of the run: {wall['seconds']:.1f} s over {wall['invocations']} call(s); "
      f"epoch time after the first (training only, median): "
      f"{sorted(steady)[len(steady) // 2]:.2f} s" if steady else
      f"- wall time of the run: {wall['seconds']:.1f} s (one epoch only)", "",
      _table(["epoch", "train_time_s", "eval_time_s", "test accuracy per seed",
              "unforgettable fraction so far, per seed", "combined (every seed)"], rows)])
  (dest / "summary.md").write_text(text)
  return text


def main(argv: list[str]) -> int:
  usage = ("usage: python -m benchmarks.gpu_evidence env DIR | toneva DIR RUN_DIR | "
           "merge DIR OUT.md")
  if len(argv) < 2 or argv[0] not in ("env", "toneva", "merge"):
    print(f"error: {usage}", file=sys.stderr)
    return 2
  directory = pathlib.Path(argv[1])
  if argv[0] == "env":
    info = env(directory)
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    print(f"env: {info['device']}; nvidia-smi: {info['nvidia_smi']}; {versions}; "
          f"torch CUDA {info['torch_cuda']}; commit {info['commit']}")
  elif argv[0] == "toneva" and len(argv) == 3:
    print(toneva(directory, pathlib.Path(argv[2])))
  elif argv[0] == "merge" and len(argv) == 3:
    print(merge(directory, pathlib.Path(argv[2])))
  else:
    print(f"error: {usage}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
