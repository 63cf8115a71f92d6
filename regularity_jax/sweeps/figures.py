"""Matplotlib figures shared by the studies and the notebooks (Agg backend, no display)."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np


def subplots(n: int, *, width: float = 3.3, height: float = 2.8, ncols: int | None = None):
  """A row (or grid) of n axes; returns (fig, flat list of axes)."""
  ncols = ncols or n
  nrows = -(-n // ncols)
  fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
  flat = list(axes.ravel())
  for ax in flat[n:]:
    ax.set_visible(False)
  return fig, flat[:n]


def group_histogram(ax, values: np.ndarray, groups: Mapping[str, np.ndarray], *, bins: int = 40,
                    clip: tuple[float, float] | None = None, xlabel: str = "") -> None:
  """Overlaid density histograms of `values` f32[N] for each boolean mask in `groups`
  (values outside `clip`, default the 0.5-99.5 percentiles, are clipped into the end bins)."""
  values = np.asarray(values, np.float64)
  finite = np.isfinite(values)
  if not finite.any():
    ax.text(0.5, 0.5, "no values", ha="center", transform=ax.transAxes)
    return
  lo, hi = clip or (np.percentile(values[finite], 0.5), np.percentile(values[finite], 99.5))
  if hi <= lo:
    lo, hi = lo - 0.5, hi + 0.5
  edges = np.linspace(lo, hi, bins + 1)
  for name, mask in groups.items():
    v = values[np.asarray(mask) & finite]
    if len(v):
      ax.hist(np.clip(v, lo, hi), bins=edges, density=True, alpha=0.55,
              label=f"{name} (n={len(v)})")
  ax.set(xlabel=xlabel, ylabel="density")
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)


def curves(ax, x: Sequence[float], ys: Mapping[str, Sequence[float]], *, xlabel: str = "",
           ylabel: str = "", title: str = "", marker: str = ".") -> None:
  """One line per entry of `ys` over `x`."""
  for name, y in ys.items():
    ax.plot(x, y, marker=marker, label=name)
  ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)


def image_grid(images: np.ndarray, titles: Sequence[str], *, ncols: int = 8,
               size: float = 1.1, suptitle: str = ""):
  """A grid of images f32[K, H, W, C] (C = 1 shown in gray, min-max scaled each) with titles."""
  k = len(images)
  nrows = max(1, -(-k // ncols))
  lines = max((t.count("\n") + 1 for t in titles), default=1)
  fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.15 * lines) * nrows),
                           squeeze=False)
  for ax in axes.ravel():
    ax.axis("off")
  for ax, img, title in zip(axes.ravel(), images, titles):
    img = np.asarray(img, np.float32)
    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-6)
    if img.ndim == 3 and img.shape[-1] == 1:
      img = img[..., 0]
    if img.ndim == 1 or (img.ndim == 2 and min(img.shape) == 1):
      ax.plot(img.reshape(-1))  # 1-D signals (mnist1d)
      ax.axis("on")
      ax.set_xticks([])
      ax.set_yticks([])
    else:
      ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
    ax.set_title(title, fontsize=7)
  if suptitle:
    fig.suptitle(suptitle, fontsize=9)
  return fig
