"""report.html: one self-contained page per run (no server, no script, nothing fetched).

Everything the page shows is inside it: thumbnails as one sprite sheet per split (or SVG
symbols for 1-D data), the run's plots as PNG data URIs, the config and the provenance as text.
Each grid is a `<div class="grid">` with `data-split`, `data-score`, `data-label` and `data-end`
attributes, and each thumbnail a `<figure class="th">` with `data-id` (the example id) and
`data-row` (its row in scores.npz): the browser test reads them back.
"""

from __future__ import annotations

import base64
import html
import json
import pathlib
from typing import Any, Mapping, Sequence

import numpy as np

from regularity_jax.metrics import difficulty
from regularity_jax.report import selection as selection_lib
from regularity_jax.report import thumbnails

DISPLAY_PX = 42  # thumbnails are scaled to this height (pixelated)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 1.5em 3em;
color:#222;background:#fff}
h1{font-size:1.5em;margin:.8em 0 .2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid
#ddd}nav a{margin-right:1em}table.kv td{padding:1px 10px 1px 0;vertical-align:top}
table.grids{border-collapse:collapse}table.grids td,table.grids th{padding:4px 6px;
vertical-align:top;border-top:1px solid #eee}td.end{color:#555;font-size:12px;width:7em}
table.grids th{text-align:left;font-weight:600;white-space:nowrap}.grid{display:flex;flex-wrap:wrap;gap:3px;max-width:64em}
.th{margin:0;display:inline-flex;flex-direction:column;align-items:center;font-size:8.5px;
width:46px;line-height:1.15;color:#444}.th figcaption{text-align:center;white-space:nowrap}
.th .im{image-rendering:pixelated;border:1px solid #ccc}.th.bad .im{border-color:#d00}
.th .was{color:#d00}.line{width:72px;height:30px;border:1px solid #ccc;background:#fafafa;
color:#1f5f9f}details{margin:.6em 0}summary{cursor:pointer;font-weight:600}
.def{color:#555;font-weight:400}img.plot{max-width:100%;height:auto}
pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:12px;max-height:40em}
.note{color:#555}
"""


def _fmt(value: float) -> str:
  """At most about 6 characters: 15, 0.632, -1.2, 1e-07."""
  if not np.isfinite(value):
    return "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")
  text = f"{value:.3g}"
  return f"{value:.0e}" if "e" in text else text


class _Thumbs:
  """The thumbnails of one split: each shown row encoded once."""

  def __init__(self, split: str, rows: np.ndarray, examples: np.ndarray, pixel_mean,
               pixel_std, draw: str = "", vocabulary: Sequence[str] = ()):
    self.split = split
    self.index = {int(r): j for j, r in enumerate(rows)}
    self.drawing = thumbnails.drawing(draw, examples.shape[1:])
    self.one_d = self.drawing == "line"
    self.texts = {}
    if self.drawing == "none":  # no inputs were given (`Recorder` without examples)
      self.symbols, self.sheet = [], None
    elif self.drawing == "text":
      self.symbols, self.sheet = [], None
      self.texts = {int(r): thumbnails.sentence(examples[j], vocabulary)
                    for j, r in enumerate(rows)}
    elif self.one_d:
      self.symbols = [thumbnails.line_symbol(f"x-{split}-{int(r)}", examples[j])
                      for j, r in enumerate(rows)]
      self.sheet = None
    else:
      self.symbols = []
      self.sheet = (thumbnails.sheet(thumbnails.to_uint8(examples, pixel_mean, pixel_std))
                    if len(rows) else None)
      h = self.sheet.height if self.sheet else DISPLAY_PX
      self.scale = DISPLAY_PX / h

  def css(self) -> str:
    if self.drawing == "none":
      return ".nx{width:60px;height:30px;border:1px dashed #ccc}"
    if self.drawing == "text":
      return (".tx{width:160px;min-height:30px;font:11px/1.25 sans-serif;text-align:left;"
              "border:1px solid #ccc;background:#fafafa;padding:2px;overflow-wrap:anywhere}")
    if self.sheet is None:
      return ""
    s, sh = self.scale, self.sheet
    rows = -(-sh.count // sh.columns)
    return (f".s-{self.split}{{background-image:url({sh.data_uri});background-size:"
            f"{sh.columns * sh.width * s:.2f}px {rows * sh.height * s:.2f}px;"
            f"width:{sh.width * s:.2f}px;height:{sh.height * s:.2f}px}}")

  def picture(self, row: int) -> str:
    if self.drawing == "none":
      return '<div class="nx"></div>'
    if self.drawing == "text":
      return f'<div class="tx">{html.escape(self.texts[row])}</div>'
    if self.one_d:
      return f'<svg class="line" viewBox="0 0 100 40"><use href="#x-{self.split}-{row}"/></svg>'
    x, y = self.sheet.position(self.index[row])
    return (f'<div class="im s-{self.split}" style="background-position:-{x * self.scale:.2f}px '
            f'-{y * self.scale:.2f}px"></div>')


def _thumb(thumbs: _Thumbs, scores: Mapping[str, np.ndarray], split: str, row: int,
           value: float, class_names: Sequence[str], what: str) -> str:
  example_id = int(scores[f"{split}/example_id"][row])
  label = int(scores[f"{split}/label"][row])
  corrupted = split == "train" and "train/corrupted" in scores and bool(
      scores["train/corrupted"][row])
  title = f"id {example_id}, label {selection_lib.class_name(class_names, label)}"
  was = ""
  if corrupted:
    original = int(scores["train/original_label"][row])
    was = f'<br><span class="was">was {original}</span>'
    title += f" (corrupted; original label {selection_lib.class_name(class_names, original)})"
  title += f", {what} {_fmt(value)}"
  return (f'<figure class="th{" bad" if corrupted else ""}" data-id="{example_id}" '
          f'data-row="{row}" title="{html.escape(title)}">{thumbs.picture(row)}'
          f"<figcaption>#{example_id}<br>y={label} · {_fmt(value)}{was}</figcaption></figure>")


def _grid(grid: selection_lib.Grid, thumbs: _Thumbs, scores, class_names, what: str) -> str:
  cells = "".join(_thumb(thumbs, scores, grid.split, int(r), float(v), class_names, what)
                  for r, v in zip(grid.rows, grid.values))
  return (f'<div class="grid" data-split="{grid.split}" data-score="{grid.score}" '
          f'data-label="{grid.label}" data-end="{html.escape(grid.end)}">{cells}</div>')


def _score_section(name: str, grids: Sequence[selection_lib.Grid], thumbs: _Thumbs, scores,
                   class_names, *, open_: bool) -> str:
  spec = difficulty.get(name)
  ends = selection_lib.end_titles(name)
  by_label: dict[int, dict[str, selection_lib.Grid]] = {}
  for g in grids:
    by_label.setdefault(g.label, {})[g.end] = g
  rows = "".join(
      f'<tr><th rowspan="2">{html.escape(selection_lib.class_name(class_names, label))}</th>'
      f'<td class="end">{ends["hardest"]}</td>'
      f"<td>{_grid(by_label[label]['hardest'], thumbs, scores, class_names, name)}</td></tr>"
      f'<tr><td class="end">{ends["easiest"]}</td>'
      f"<td>{_grid(by_label[label]['easiest'], thumbs, scores, class_names, name)}</td></tr>"
      for label in sorted(by_label))
  return (f'<details{" open" if open_ else ""} id="score-{grids[0].split}-{name}"><summary>'
          f'{name} <span class="def">— {html.escape(spec.definition)} '
          f"({html.escape(spec.reference)})</span></summary><table class=\"grids\">{rows}"
          "</table></details>")


def _image(path: pathlib.Path, alt: str) -> str:
  payload = base64.b64encode(path.read_bytes()).decode("ascii")
  return f'<img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,{payload}">'


def _kv(items: Mapping[str, Any]) -> str:
  return "<table class=\"kv\">" + "".join(
      f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
      for k, v in items.items()) + "</table>"


def render(*, title: str, summary: Mapping[str, Any], scores: Mapping[str, np.ndarray],
           examples: Mapping[str, np.ndarray], class_names: Sequence[str],
           grids: Sequence[selection_lib.Grid], plots: Mapping[str, pathlib.Path],
           config: Mapping[str, Any], provenance: Mapping[str, Any] | None,
           pixel_mean=(), pixel_std=(), k: int, seed: int, draw: str = "",
           vocabulary: Sequence[str] = ()) -> str:
  """The report page as one HTML string.

  Args:
    title: the page title (the run directory's name).
    summary: key -> value lines of the summary table.
    scores: the scores.npz table.
    examples: split -> f32[N, ...] examples in the rows of scores.npz (as trained on).
    class_names: names by label.
    grids: what to show (`selection`).
    plots: caption -> PNG path, embedded in this order.
    config, provenance: shown as JSON.
    pixel_mean, pixel_std: the dataset's normalization, undone for display.
    k, seed: the selection's parameters (stated on the page).
    draw: how one example is drawn ("image", "line", "text"; "" = by its shape).
    vocabulary: token id -> word, for text.
  """
  thumbs = {}
  for split in ("train", "test"):
    rows = sorted({int(r) for g in grids if g.split == split for r in g.rows})
    if split in examples:
      thumbs[split] = _Thumbs(split, np.asarray(rows, np.int64),
                              np.asarray(examples[split])[rows] if rows else
                              np.asarray(examples[split])[:0], pixel_mean, pixel_std,
                              draw, vocabulary)
  style = _CSS + "".join(t.css() for t in thumbs.values())
  symbols = "".join(s for t in thumbs.values() for s in t.symbols)
  body = [f"<h1>{html.escape(title)}</h1>"]
  sections = [("summary", "Summary"), ("curves", "Learning curves"),
              ("train", "Training examples"), ("datamap", "Data map"),
              ("test", "Test examples"), ("config", "Config and provenance")]
  body.append("<nav>" + "".join(f'<a href="#{a}">{t}</a>' for a, t in sections) + "</nav>")
  body.append(f'<h2 id="summary">Summary</h2>{_kv(summary)}')
  body.append('<h2 id="curves">Learning curves, forgetting, margins</h2>')
  curves = {c: p for c, p in plots.items() if c != "data map"}
  if not curves:
    body.append('<p class="note">No plots: the run was made with --config.plots=False.</p>')
  for caption, path in curves.items():
    body.append(f"<p>{_image(path, caption)}</p>")
  rule = (f"Per class (the label the run trained with), the {k} examples with the highest and "
          f"the lowest value of each score, ranked by <code>metrics.difficulty.order</code> "
          f"(higher = harder; NaN last; ties broken by the permutation of seed {seed}). "
          "Captions: example id, the label the run used and the score; a red frame and "
          "'was c' mark an example whose label the run corrupted (c: its original label).")
  for split, heading in (("train", "Training examples"), ("test", "Test examples")):
    split_grids = [g for g in grids if g.split == split and g.score != "data_map"]
    body.append(f'<h2 id="{split}">{heading}</h2>')
    if split == "test":
      body.append('<p class="note">Test examples are ranked by their evaluation stream: CBGL '
                  "and mal-generalizing events (Zhang et al. 2021).</p>")
    if not split_grids:
      body.append('<p class="note">No score of this split was tracked.</p>')
      continue
    body.append(f'<p class="note">{rule}</p>')
    names = list(dict.fromkeys(g.score for g in split_grids))
    for j, name in enumerate(names):
      body.append(_score_section(name, [g for g in split_grids if g.score == name],
                                 thumbs[split], scores, class_names, open_=j == 0))
    if split == "train":
      body.append(_data_map(grids, plots, thumbs.get("train"), scores, class_names, k))
  body.append('<h2 id="config">Config and provenance</h2>')
  body.append("<details><summary>config.json</summary><pre>"
              f"{html.escape(json.dumps(config, indent=2, sort_keys=True))}</pre></details>")
  body.append("<details open><summary>provenance (scores.npz)</summary><pre>"
              f"{html.escape(json.dumps(provenance, indent=2))}</pre></details>")
  return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
          f"<title>{html.escape(title)}</title><style>{style}</style></head><body>"
          f'<svg style="position:absolute;width:0;height:0" aria-hidden="true"><defs>{symbols}'
          f'</defs></svg>{"".join(body)}</body></html>')


def _data_map(grids, plots, thumbs, scores, class_names, k) -> str:
  regions = [g for g in grids if g.score == "data_map"]
  out = ['<h2 id="datamap">Data map</h2>']
  if "data map" in plots:
    out.append(f"<p>{_image(plots['data map'], 'data map')}</p>")
  if not regions:
    out.append('<p class="note">The run did not track confidence and variability (the '
               "'confidence' kernel).</p>")
    return "".join(out)
  out.append(f'<p class="note">Which examples sit where (Swayamdipta et al. 2020), over all '
             f"classes: the {k} easiest to learn (highest confidence: top left), the most "
             "ambiguous (highest variability: right) and the hardest to learn (lowest "
             "confidence: bottom left). Captions give the confidence.</p>")
  out.append('<table class="grids">')
  for g in regions:
    out.append(f"<tr><th>{g.end}</th><td>{_grid(g, thumbs, scores, class_names, 'confidence')}"
               "</td></tr>")
  out.append("</table>")
  return "".join(out)
