"""`Report`: the Markdown report (tables, PNG figures) that every study writes to its workdir.

  report = Report(workdir, "Real vs random labels", seeds=(0,))
  report.paragraph("What was measured ...")
  report.table(rows, columns=["dataset", "noise", "auroc"], formats={"auroc": ".3f"})
  report.figure(fig, "auroc.png", "AUROC of memorization for the randomized labels")
  path = report.write()          # workdir/report.md, evidence header first

The header is the evidence a reader needs to trust the numbers: date, hardware (CPU model,
core count, JAX devices), jax/flax versions, the seeds and the wall time of the study
(of this invocation: sub-runs a rerun reused cost nothing, and the header says how many).
"""

from __future__ import annotations

import datetime
import math
import os
import pathlib
import platform
import time
from typing import Any, Iterable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

FIGURE_DPI = 80  # Small PNGs: the reports are committed next to the code.


def format_value(value: Any, spec: str | None = None) -> str:
  """One table cell: numbers with `spec` (default 4 significant digits), NaN as 'n/a'."""
  if value is None:
    return ""
  if isinstance(value, (bool, np.bool_)):
    return "yes" if value else "no"
  if isinstance(value, (int, np.integer)) and spec is None:
    return str(int(value))
  if isinstance(value, (float, np.floating, int, np.integer)):
    value = float(value)
    if math.isnan(value):
      return "n/a"
    if math.isinf(value):
      return "never" if value > 0 else "-inf"
    return format(value, spec or ".4g")
  return str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                   formats: Mapping[str, str] | None = None,
                   headers: Mapping[str, str] | None = None) -> str:
  """A GitHub Markdown table of `rows` (dicts); `columns` picks and orders the keys (default:
  every key, in first-seen order); `formats` maps a column to a format spec such as '.3f';
  `headers` renames columns."""
  if columns is None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
  formats, headers = dict(formats or {}), dict(headers or {})
  head = [headers.get(c, c) for c in columns]
  lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in columns) + "|"]
  for row in rows:
    lines.append("| " + " | ".join(format_value(row.get(c), formats.get(c)) for c in columns)
                 + " |")
  return "\n".join(lines)


def mean_std_rows(rows: Sequence[Mapping[str, Any]], by: Sequence[str],
                  values: Sequence[str]) -> list[dict[str, Any]]:
  """Groups `rows` by the `by` keys; each value column becomes 'mean ± std (n)' over the group
  (NaNs skipped). The groups keep their first-seen order."""
  groups: dict[tuple, list[Mapping[str, Any]]] = {}
  for row in rows:
    groups.setdefault(tuple(row.get(k) for k in by), []).append(row)
  out = []
  for key, members in groups.items():
    row = dict(zip(by, key))
    for v in values:
      x = np.asarray([m.get(v, np.nan) for m in members], np.float64)
      x = x[np.isfinite(x)]
      row[v] = ("n/a" if len(x) == 0 else f"{x.mean():.4g}" if len(x) == 1 else
                f"{x.mean():.4g} ± {x.std(ddof=1):.2g} (n={len(x)})")
    out.append(row)
  return out


def cpu_model() -> str:
  """The CPU model name (Linux /proc/cpuinfo), else platform.processor() or the machine."""
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def evidence(seeds: Iterable[int] = (), wall_time_s: float | None = None,
             extra: Mapping[str, str] | None = None) -> dict[str, str]:
  """Date, hardware, software versions, seeds and wall time, as label -> text."""
  import flax  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  kinds: dict[str, int] = {}
  for d in jax.devices():
    kinds[d.device_kind] = kinds.get(d.device_kind, 0) + 1
  out = {
      "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
      "hardware": (f"{cpu_model()} ({platform.machine()}), {os.cpu_count()} CPU cores visible; "
                   "JAX devices: " + ", ".join(f"{n} x {k}" for k, n in kinds.items())),
      "software": (f"jax {jax.__version__}, flax {flax.__version__}, "
                   f"python {platform.python_version()}"),
      "seeds": ", ".join(str(int(s)) for s in sorted(set(seeds))) or "none",
  }
  if wall_time_s is not None:
    out["wall time"] = (f"{wall_time_s:.0f} s ({wall_time_s / 60:.1f} min) for this invocation "
                        "of the study")
  out.update(extra or {})
  return out


class Report:
  """Collects Markdown blocks and figures; `write()` puts them in `workdir/report.md`.

  Args:
    workdir: the study's directory (created if missing); figures are saved there.
    title: the report's H1 title.
    seeds: seeds the study used (for the header); `add_seeds` adds more later.
  """

  def __init__(self, workdir: str | os.PathLike, title: str, *, seeds: Iterable[int] = ()):
    self.workdir = pathlib.Path(workdir)
    self.workdir.mkdir(parents=True, exist_ok=True)
    self.title = title
    self.seeds = set(int(s) for s in seeds)
    self.blocks: list[str] = []
    self.figures: list[pathlib.Path] = []
    self.notes: dict[str, str] = {}
    self._start = time.perf_counter()

  def add_seeds(self, seeds: Iterable[int]) -> None:
    self.seeds.update(int(s) for s in seeds)

  def note(self, label: str, text: str) -> None:
    """An extra line of the evidence header (e.g. the settings, or how many runs were reused)."""
    self.notes[label] = text

  def heading(self, text: str, level: int = 2) -> None:
    self.blocks.append("#" * level + " " + text)

  def paragraph(self, text: str) -> None:
    self.blocks.append(text.strip())

  def preformatted(self, text: str) -> None:
    """A fixed-width block (e.g. a study's method description from its docstring)."""
    self.blocks.append("```text\n" + text.strip("\n") + "\n```")

  def bullets(self, items: Iterable[str]) -> None:
    self.blocks.append("\n".join(f"- {item}" for item in items))

  def table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
            formats: Mapping[str, str] | None = None,
            headers: Mapping[str, str] | None = None) -> None:
    """Adds a table of `rows` (see `markdown_table`)."""
    self.blocks.append(markdown_table(rows, columns, formats, headers) if rows else "(no rows)")

  def figure(self, fig, name: str, caption: str = "") -> pathlib.Path:
    """Saves a matplotlib figure as workdir/`name` (PNG), closes it and adds it to the report."""
    path = self.workdir / name
    fig.tight_layout()
    fig.savefig(path, dpi=FIGURE_DPI)
    plt.close(fig)
    self.figures.append(path)
    self.blocks.append(f"![{caption or name}]({name})" + (f"\n\n*{caption}*" if caption else ""))
    return path

  def markdown(self) -> str:
    header = evidence(self.seeds, time.perf_counter() - self._start, self.notes)
    lines = [f"# {self.title}", ""] + [f"- **{k}**: {v}" for k, v in header.items()]
    return "\n".join(lines) + "\n\n" + "\n\n".join(self.blocks) + "\n"

  def write(self, name: str = "report.md") -> pathlib.Path:
    path = self.workdir / name
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(self.markdown())
    os.replace(tmp, path)
    return path
