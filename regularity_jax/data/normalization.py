"""Pixel scaling and per-channel normalization.

uint8 pixels are scaled to [0, 1]; float pixels are taken as they are. The
normalization statistics are a per-channel mean and (population) std over
every pixel of the rows given, accumulated in float64 chunk by chunk so that
a 50000-image split needs no float64 copy.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 4096  # rows per accumulation step


def to_unit_float(images: np.ndarray) -> np.ndarray:
  """Pixels as float32, uint8 scaled by 1/255.

  Args:
    images: u8|float[N, ...].

  Returns:
    f32[N, ...].
  """
  if images.dtype == np.uint8:
    return images.astype(np.float32) * np.float32(1 / 255)
  return images.astype(np.float32)


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel mean and std of pixels, after `to_unit_float` scaling.

  Args:
    images: u8|float[N, ..., C]; the last axis is the channel.

  Returns:
    mean: f64[C].
    std: f64[C], population std (ddof=0).
  """
  channels = images.shape[-1]
  count = 0
  mean = np.zeros(channels)
  m2 = np.zeros(channels)
  for start in range(0, len(images), _CHUNK):
    chunk = to_unit_float(images[start:start + _CHUNK]).reshape(-1, channels)
    chunk = chunk.astype(np.float64)
    n = len(chunk)
    chunk_mean = chunk.mean(0)
    chunk_m2 = ((chunk - chunk_mean) ** 2).sum(0)
    # Chan et al.'s pairwise update: exact merge of two (count, mean, M2).
    delta = chunk_mean - mean
    total = count + n
    mean = mean + delta * (n / total)
    m2 = m2 + chunk_m2 + delta**2 * (count * n / total)
    count = total
  return mean, np.sqrt(m2 / count)


def normalize(images: np.ndarray, mean: np.ndarray,
              std: np.ndarray) -> np.ndarray:
  """(pixels - mean) / std per channel; a channel with std 0 is only centered.

  Args:
    images: u8|float[N, ..., C].
    mean: f[C], from `channel_stats`.
    std: f[C], from `channel_stats`.

  Returns:
    f32[N, ..., C].
  """
  out = to_unit_float(images)
  scale = np.where(std > 0, std, 1.0)
  out -= np.asarray(mean, np.float32)
  out /= np.asarray(scale, np.float32)
  return out
