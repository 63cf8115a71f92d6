"""The report's grids as PNG files, for papers and the README.

One figure per score: a row per class, the k hardest examples on the left and the k easiest on
the right, exactly the grids of report.html (`selection.score_grids`). Drawn with Pillow
(nearest-neighbour upscaling, no matplotlib): a dozen figures of a 50,000-example run take
about a second.
"""

from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from regularity_jax.report import selection as selection_lib
from regularity_jax.report import thumbnails

CELL_PX = 56       # thumbnails are upscaled by the integer CELL_PX // height
LINE_CELL = (64, 32)  # a 1-D example's cell (width, height)
PAD = 2            # pixels between thumbnails
LEFT, TOP = 110, 48  # margins for class names and titles


def _font(size: int):
  try:
    return ImageFont.load_default(size=size)
  except TypeError:  # Pillow without FreeType sizes
    return ImageFont.load_default()


TEXT_CELL = (200, 44)  # a text example's tile: its first words, in up to 3 lines


def _text_tile(text: str) -> Image.Image:
  w, h = TEXT_CELL
  tile = Image.new("RGB", (w, h), (250, 250, 250))
  draw = ImageDraw.Draw(tile)
  lines, line = [], ""
  for word in text.split():
    if len(line) + len(word) + 1 > 30 and line:
      lines.append(line)
      line = word
    else:
      line = f"{line} {word}".strip()
  lines.append(line)
  for j, text_line in enumerate(lines[:3]):
    draw.text((3, 2 + 13 * j), text_line + (" ..." if j == 2 and len(lines) > 3 else ""),
              fill=(20, 20, 20), font=_font(11))
  return tile


def _cells(examples: np.ndarray, pixel_mean, pixel_std, draw: str = "",
           vocabulary=()) -> list[Image.Image]:
  """One RGB tile per example: upscaled pixels, a line plot for 1-D data, or the words of a
  text example."""
  drawing = thumbnails.drawing(draw, examples.shape[1:])
  if drawing == "text":
    return [_text_tile(thumbnails.sentence(x, vocabulary)) for x in examples]
  if drawing == "line":
    tiles = []
    w, h = LINE_CELL
    for series in examples:
      x = np.asarray(series, np.float32).reshape(examples.shape[1], -1)
      lo, hi = np.nanmin(x), np.nanmax(x)
      y = (h - 3) - (h - 6) * (np.nan_to_num(x) - lo) / max(hi - lo, 1e-8)
      xs = np.linspace(2, w - 3, x.shape[0])
      tile = Image.new("RGB", (w, h), (250, 250, 250))
      draw = ImageDraw.Draw(tile)
      for ch in range(x.shape[1]):
        draw.line(list(zip(xs.tolist(), y[:, ch].tolist())), fill=(31, 95, 159), width=1)
      tiles.append(tile)
    return tiles
  pixels = thumbnails.to_uint8(examples, pixel_mean, pixel_std)
  scale = max(1, CELL_PX // pixels.shape[1])  # MNIST 2x; CIFAR 1x (a color PNG 4x smaller)
  tiles = []
  for p in pixels:
    tile = Image.fromarray(p[..., 0] if p.shape[-1] == 1 else p).convert("RGB")
    tiles.append(tile.resize((p.shape[1] * scale, p.shape[0] * scale), Image.NEAREST))
  return tiles


def score_figure(grids: Sequence[selection_lib.Grid], examples: np.ndarray, index_of: dict,
                 class_names: Sequence[str], path, *, k: int, pixel_mean=(), pixel_std=(),
                 title: str = "", draw: str = "", vocabulary=()) -> pathlib.Path:
  """Writes the PNG of one score's grids.

  Args:
    grids: the hardest and easiest grid of each class of one score (`score_grids` order).
    examples: f32[m, ...] the split's examples that `index_of` indexes.
    index_of: split row -> index into `examples`.
    class_names: names by label.
    path: the PNG to write.
    k: examples per grid.
    pixel_mean, pixel_std: the dataset's normalization (`thumbnails.to_uint8`).
    title: the figure's title.
    draw, vocabulary: how one example is drawn (`thumbnails.drawing`), words of text.
  """
  by_label: dict[int, dict[str, selection_lib.Grid]] = {}
  for g in grids:
    by_label.setdefault(g.label, {})[g.end] = g
  labels = sorted(by_label)
  names = selection_lib.end_titles(grids[0].score if grids else "")
  tiles = _cells(examples, pixel_mean, pixel_std, draw, vocabulary) if len(examples) else []
  tw, th = tiles[0].size if tiles else (CELL_PX, CELL_PX)
  gap = 3 * tw // 2
  half = k * (tw + PAD)
  width, height = LEFT + 2 * half + gap, TOP + len(labels) * (th + PAD)
  canvas = Image.new("RGB", (width, height), (255, 255, 255))
  draw = ImageDraw.Draw(canvas)
  small, large = _font(14), _font(16)
  if title:
    draw.text((LEFT, 4), title, fill=(0, 0, 0), font=large)
  for j, end in enumerate(selection_lib.ENDS):
    draw.text((LEFT + j * (half + gap), TOP - 20), names[end], fill=(40, 40, 40), font=small)
  for r, label in enumerate(labels):
    y = TOP + r * (th + PAD)
    name = selection_lib.class_name(class_names, label)
    draw.text((4, y + th // 2 - 8), name[:14], fill=(0, 0, 0), font=small)
    for j, end in enumerate(selection_lib.ENDS):
      for c, row in enumerate(by_label[label][end].rows):
        canvas.paste(tiles[index_of[int(row)]], (LEFT + j * (half + gap) + c * (tw + PAD), y))
  path = pathlib.Path(path)
  canvas.save(path, format="PNG")
  return path
