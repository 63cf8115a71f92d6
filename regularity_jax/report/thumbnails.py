"""Thumbnails of the examples a report shows, each encoded once.

Images become one sprite sheet per split (PNG for grayscale, JPEG for color: a CIFAR-10 page
stays a few MB), which the page cuts with CSS background positions. 1-D examples (MNIST-1D)
become one SVG `<symbol>` each, drawn with `<use>` wherever they appear. Pixels are shown as
the run trained on them (after corruption), with the dataset's normalization undone.
"""

from __future__ import annotations

import base64
import dataclasses
import io
from typing import Sequence

import numpy as np
from PIL import Image

SHEET_COLUMNS = 64
JPEG_QUALITY = 90


def is_one_dimensional(example_shape: Sequence[int]) -> bool:
  """(L,) or (L, C) examples are drawn as line plots; (H, W, C) as images."""
  return len(example_shape) <= 2


def drawing(draw: str, example_shape: Sequence[int]) -> str:
  """How an example is drawn: the dataset's `draw` ("image", "line", "text", or "none": no
  inputs were given, captions only), else by shape."""
  if draw:
    return draw
  return "line" if is_one_dimensional(example_shape) else "image"


PAD_TOKEN = 0  # token id 0 pads a text example; not shown


def sentence(tokens: np.ndarray, vocabulary: Sequence[str]) -> str:
  """The words of one text example (token ids f32|int[L] or [L, 1]), padding dropped; an id
  outside the vocabulary is shown as <id>."""
  ids = np.asarray(tokens).reshape(-1).astype(np.int64)
  words = [vocabulary[i] if 0 <= i < len(vocabulary) else f"<{i}>"
           for i in ids.tolist() if i != PAD_TOKEN]
  return " ".join(words)


def to_uint8(images: np.ndarray, pixel_mean: Sequence[float] = (),
             pixel_std: Sequence[float] = ()) -> np.ndarray:
  """u8[n, H, W, C] display pixels from normalized f32 images.

  With the dataset's `pixel_mean` / `pixel_std` the normalization is undone (`raw = x * std +
  mean`, raw in [0, 1]); without them each image is min-max scaled.
  """
  x = np.asarray(images, np.float32)
  if len(pixel_mean) and len(pixel_std):
    x = x * np.asarray(pixel_std, np.float32) + np.asarray(pixel_mean, np.float32)
  else:
    lo = np.nanmin(x, axis=tuple(range(1, x.ndim)), keepdims=True)
    hi = np.nanmax(x, axis=tuple(range(1, x.ndim)), keepdims=True)
    x = (x - lo) / np.maximum(hi - lo, 1e-8)
  return (np.clip(np.nan_to_num(x), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class Sheet:
  """A sprite sheet: thumbnail j sits at column j % columns, row j // columns.

  Attributes:
    data_uri: the encoded sheet, "data:image/png;base64,..." or "data:image/jpeg;...".
    height, width: one thumbnail's size in pixels.
    columns: thumbnails per sheet row.
    count: thumbnails in the sheet.
  """
  data_uri: str
  height: int
  width: int
  columns: int
  count: int

  def position(self, j: int) -> tuple[int, int]:
    """(x, y) pixel offset of thumbnail j in the sheet."""
    return (j % self.columns) * self.width, (j // self.columns) * self.height


def encode(image: np.ndarray, *, jpeg: bool) -> bytes:
  """u8[H, W, C] (C 1 or 3) -> PNG or JPEG bytes."""
  image = np.asarray(image, np.uint8)
  pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
  out = io.BytesIO()
  if jpeg:
    pil.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
  else:
    pil.save(out, format="PNG", optimize=True)
  return out.getvalue()


def data_uri(payload: bytes, mime: str) -> str:
  return f"data:{mime};base64," + base64.b64encode(payload).decode("ascii")


def sheet(pixels: np.ndarray, columns: int = SHEET_COLUMNS) -> Sheet:
  """One sprite sheet of u8[n, H, W, C] thumbnails (n >= 1)."""
  n, h, w, c = pixels.shape
  columns = max(1, min(columns, n))
  rows = -(-n // columns)
  canvas = np.zeros((rows * h, columns * w, c), np.uint8)
  for j in range(n):
    y, x = (j // columns) * h, (j % columns) * w
    canvas[y:y + h, x:x + w] = pixels[j]
  jpeg = c == 3
  return Sheet(data_uri(encode(canvas, jpeg=jpeg), "image/jpeg" if jpeg else "image/png"),
               h, w, columns, n)


def line_symbol(symbol_id: str, series: np.ndarray) -> str:
  """An SVG <symbol> drawing f32[L] or f32[L, C] (one polyline per channel), min-max scaled
  to a 100 x 40 box."""
  x = np.asarray(series, np.float32)
  x = x[:, None] if x.ndim == 1 else x
  lo, hi = np.nanmin(x), np.nanmax(x)
  y = 38.0 - 36.0 * (np.nan_to_num(x) - lo) / max(hi - lo, 1e-8)
  xs = np.linspace(1.0, 99.0, x.shape[0])
  lines = []
  for ch in range(x.shape[1]):
    pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, y[:, ch]))
    lines.append(f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" '
                 f'points="{pts}"/>')
  return f'<symbol id="{symbol_id}" viewBox="0 0 100 40">{"".join(lines)}</symbol>'
