"""Image-folder datasets: `train/<class>/*` and `test/<class>/*`.

The tree may be extracted in a directory or packed in one `.tar.gz` / `.tgz` /
`.tar` (any leading folders inside the archive are ignored), which is how the
shared CIFAR-10 JPEG set ships.

Images in subfolders of a class folder (`train/cat/indoor/1.png`) belong to that class, as
torchvision's `ImageFolder` finds them; hidden files and folders (a leading ".") are skipped.
16-bit grayscale PNGs are scaled to 8 bits (`to_mode`), not clipped.

Labels. Class folders whose names match the dataset's canonical class names
(compared lower-case with punctuation dropped, so `t_shirt_top` matches
"T-shirt/top") take the canonical label; for cifar10 that is airplane,
automobile, bird, cat, deer, dog, frog, horse, ship, truck. Otherwise there
must be exactly num_classes folders, labelled in sorted name order (numeric
order when every name is a number).

Canonical order, which example ids index: sorted by (label, file name).

Decoding. Images are decoded with Pillow to grayscale or RGB, as the dataset
name implies. Only the rows a subset asks for are decoded (plus the rows
behind the normalization statistics, below). When a whole split is decoded,
its uint8 array is cached as `<cache_dir>/<name>-<split>-<key>.npz`, the key a
hash of the source's absolute path, size and mtime (for an extracted tree: of
every file's path, size and mtime); later loads, subset or not, read the
cache. `cache_dir` defaults to `$XDG_CACHE_HOME/regularity_jax` or
`~/.cache/regularity_jax`. On one CPU core the shared CIFAR-10 JPEG archive
takes 10-15 s to load in full the first time and under 2 s from the cache.

Normalization statistics. Decoding a whole split just to normalize a small
subset would defeat lazy decoding, so for a training split of more than
`STATS_SAMPLE` images the per-channel mean and std come from every k-th image
in canonical order (k = ceil(N / STATS_SAMPLE)): a fixed sample, the same for
every subset size, subset seed and cache state. On CIFAR-10 JPEG (10000 of
50000 images) mean and std are within 0.001 of the full-split values. Smaller
splits use every image.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import math
import os
import pathlib
import re
import tarfile
import tempfile
import zipfile
import zlib
from typing import Callable

import numpy as np
from PIL import Image

from regularity_jax.data.catalog import DatasetInfo
from regularity_jax.data.raw import RawData, RawSplit
from regularity_jax.data import types
from regularity_jax.data.types import DataError

STATS_SAMPLE = 10_000  # most training images the normalization stats read
# Reads of at most this many rows (the DataIdentity's fixed sample) keep their decoded rows,
# so that the later reads of a load decode each row once.
KEEP_READS = 64
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm",
                   ".pgm", ".tif", ".tiff")
_SPLITS = ("train", "test")
_CACHE_VERSION = "2"  # 2: images in subfolders of a class folder are found


def default_cache_dir() -> pathlib.Path:
  """`$XDG_CACHE_HOME/regularity_jax`, else `~/.cache/regularity_jax`."""
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
  return pathlib.Path(base).expanduser() / "regularity_jax"


@dataclasses.dataclass(frozen=True)
class _File:
  split: str
  class_name: str
  file_name: str
  key: str  # a path on disk or an archive member name


def load_image_folder(path: pathlib.Path, info: DatasetInfo, *,
                      cache_dir: str | os.PathLike | None = None) -> RawData:
  """Lists an image folder (or its archive) and decodes lazily.

  Args:
    path: a directory holding `train/` and `test/`, or an archive of them.
    info: the dataset's catalog entry (class names, channels).
    cache_dir: where decoded splits are cached; see the module docstring.

  Returns:
    The `RawData`: labels of every file, images decoded on demand (or read
    from the cache).
  """
  cache_root = (default_cache_dir() if cache_dir is None
                else pathlib.Path(cache_dir).expanduser())
  cached = {}
  if path.is_dir():
    files, contents = _list_tree(path), None
    fingerprint = _fingerprint(path, info, files)
  else:
    # An archive's key needs no listing, so a full cache skips reading it.
    fingerprint = _fingerprint(path, info)
    cached = {s: _read_cache(_cache_file(cache_root, info, s, fingerprint))
              for s in _SPLITS}
    if all(c is not None for c in cached.values()):
      return RawData(
          train=_cached_split(cached["train"]),
          test=_cached_split(cached["test"]), source=f"local:{path}",
          class_names=cached["train"][2])
    files, contents = _read_archive(path)
  by_split = {s: [f for f in files if f.split == s] for s in _SPLITS}
  for split, split_files in by_split.items():
    if not split_files:
      raise DataError(
          f"image folder {path} has no images under {split}/<class>/; put "
          f"train/<class>/* and test/<class>/* images there (suffixes "
          f"{', '.join(_IMAGE_SUFFIXES)})")
  label_of, class_names = _class_labels(
      sorted({f.class_name for f in files}), info, str(path))

  splits = {}
  for split, split_files in by_split.items():
    split_files.sort(key=lambda f: (label_of[f.class_name], f.file_name))
    labels = np.array([label_of[f.class_name] for f in split_files], np.int64)
    cache_file = _cache_file(cache_root, info, split, fingerprint)
    hit = cached[split] if split in cached else _read_cache(cache_file)
    if hit is not None and np.array_equal(hit[1], labels):
      splits[split] = _cached_split(hit)
    else:
      reader = _Reader(split_files, contents, info.channels, cache_file,
                       labels, class_names)
      splits[split] = RawSplit(labels=labels, reader=reader,
                               stats_indices=_stats_indices(len(labels)))
  return RawData(train=splits["train"], test=splits["test"],
                 source=f"local:{path}", class_names=class_names)


def survey(path: pathlib.Path) -> tuple[list[str], int]:
  """(sorted class-folder names, channels: 1 when the first image is grayscale, else 3) of an
  image folder or its archive, for a dataset whose classes come from the data."""
  if path.is_dir():
    files, load = _list_tree(path), lambda key: pathlib.Path(key).read_bytes()
  else:
    files, contents = _read_archive(path)
    load = contents.__getitem__
  if not files:
    raise DataError(f"image folder {path} has no images under train/<class>/ or test/<class>/; "
                    f"put them there (suffixes {', '.join(_IMAGE_SUFFIXES)})")
  first = min(files, key=lambda f: (f.split, f.class_name, f.file_name))
  try:
    with Image.open(io.BytesIO(load(first.key))) as image:
      mode = image.mode
  except (OSError, ValueError) as e:
    raise DataError(f"cannot decode image {first.key} ({e}); remove or replace that file") from e
  return sorted({f.class_name for f in files}), 1 if mode in ("1", "L", "LA", "I", "I;16", "F") else 3


def _stats_indices(n: int) -> np.ndarray | None:
  if n > STATS_SAMPLE:
    return np.arange(0, n, math.ceil(n / STATS_SAMPLE))
  return None


def _cached_split(cached) -> RawSplit:
  images, labels, _ = cached  # class names: the same for both splits
  return RawSplit(labels=labels, images=images,
                  stats_indices=_stats_indices(len(labels)))


def _is_image(name: str) -> bool:
  return (not name.startswith(".")) and name.lower().endswith(_IMAGE_SUFFIXES)


def _list_tree(root: pathlib.Path) -> list[_File]:
  files = []
  for split in _SPLITS:
    split_dir = root / split
    if not split_dir.is_dir():
      continue
    for class_entry in os.scandir(split_dir):
      if not class_entry.is_dir() or class_entry.name.startswith("."):
        continue
      # Images in subfolders of a class folder belong to the class (as torchvision's
      # ImageFolder finds them); their file name is the path below the class folder.
      for folder, subfolders, names in os.walk(class_entry.path, followlinks=True):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        below = os.path.relpath(folder, class_entry.path)
        for name in names:
          if _is_image(name):
            file_name = name if below == "." else f"{below}/{name}".replace(os.sep, "/")
            files.append(_File(split, class_entry.name, file_name, os.path.join(folder, name)))
  return files


def _read_archive(path: pathlib.Path) -> tuple[list[_File], dict[str, bytes]]:
  """Reads every image member in one pass (gzip cannot seek cheaply)."""
  files, contents, seen = [], {}, set()
  try:
    with tarfile.open(path, "r:*") as tar:
      for member in tar:
        parts = member.name.split("/")
        if not member.isfile() or len(parts) < 3 or not _is_image(parts[-1]):
          continue
        # <leading folders>/<split>/<class>/<image>, else <split>/<class>/<subfolders>/<image>
        # with the first split folder
        at = len(parts) - 3 if parts[-3] in _SPLITS else next(
            (i for i, p in enumerate(parts[:-3]) if p in _SPLITS), None)
        if at is None or any(p.startswith(".") for p in parts[at + 1:]):
          continue
        split, class_name, file_name = parts[at], parts[at + 1], "/".join(parts[at + 2:])
        if (split, class_name, file_name) in seen:
          raise DataError(
              f"{path} holds {split}/{class_name}/{file_name} more than once "
              "(under different leading folders); pack a single "
              "train/ + test/ tree")
        seen.add((split, class_name, file_name))
        contents[member.name] = tar.extractfile(member).read()
        files.append(_File(split, class_name, file_name, member.name))
  except (tarfile.TarError, OSError, EOFError) as e:
    raise DataError(f"cannot read {path} as a tar archive ({e}); replace it "
                    "with an intact .tar.gz of train/<class>/ and "
                    "test/<class>/") from e
  return files, contents


def _normalized(name: str) -> str:
  return re.sub(r"[^a-z0-9]", "", name.lower())


def _class_labels(found: list[str], info: DatasetInfo,
                  where: str) -> tuple[dict[str, int], tuple[str, ...]]:
  """Maps class-folder names to labels; see the module docstring."""
  canonical = {_normalized(n): i for i, n in enumerate(info.class_names)}
  keys = [_normalized(c) for c in found]
  if (all(k in canonical for k in keys) and len(set(keys)) == len(keys)
      and len(found) == info.num_classes):
    return ({c: canonical[k] for c, k in zip(found, keys)}, info.class_names)
  if len(found) == info.num_classes:
    if all(c.isdigit() for c in found):
      ordered = sorted(found, key=int)
    else:
      ordered = sorted(found)
    return {c: i for i, c in enumerate(ordered)}, tuple(ordered)
  shown = ", ".join(found[:12]) + (", ..." if len(found) > 12 else "")
  raise DataError(
      f"image folder {where} has {len(found)} class folders ({shown}) but "
      f"{info.name} has {info.num_classes} classes; name the folders after "
      f"its classes ({', '.join(info.class_names[:10])}"
      f"{', ...' if info.num_classes > 10 else ''}) or give exactly "
      f"{info.num_classes} folders")


def _fingerprint(path: pathlib.Path, info: DatasetInfo,
                 files: list[_File] | None = None) -> str:
  """Hash of what the decoded arrays depend on: files, sizes, mtimes, mode."""
  digest = hashlib.sha256(
      f"{_CACHE_VERSION}|{path}|{info.name}|{info.channels}".encode())
  if files is None:
    st = path.stat()
    digest.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
  else:
    for f in sorted(files, key=lambda f: f.key):
      st = os.stat(f.key)
      digest.update(f"|{f.key}|{st.st_size}|{st.st_mtime_ns}".encode())
  return digest.hexdigest()[:20]


def _cache_file(cache_root: pathlib.Path, info: DatasetInfo, split: str,
                fingerprint: str) -> pathlib.Path:
  return cache_root / f"{info.name}-{split}-{fingerprint}.npz"


def _read_cache(cache_file: pathlib.Path):
  """(u8 images, int labels, class names) from a cache file, or None."""
  if not cache_file.is_file():
    return None
  try:
    with np.load(cache_file, allow_pickle=False) as f:
      return (f["images"], f["labels"],
              tuple(str(n) for n in f["class_names"]))
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
    types.warn(f"the decoded-image cache {cache_file} is damaged ({type(e).__name__}: "
                 f"{str(e)[:100]}); decoding the images again and rewriting it")
    return None


def _write_cache(cache_file: pathlib.Path, images: np.ndarray,
                 labels: np.ndarray, class_names: tuple[str, ...]) -> None:
  tmp_name = None
  try:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache_file.parent, suffix=".tmp",
                                     delete=False) as tmp:
      tmp_name = tmp.name
      np.savez(tmp, images=images, labels=labels,
               class_names=np.asarray(class_names, dtype=str))
    os.replace(tmp_name, cache_file)  # atomic: readers never see half a file
  except OSError as e:
    logging.warning("could not cache decoded images at %s (%s)", cache_file,
                    e)
    if tmp_name is not None and os.path.exists(tmp_name):
      os.unlink(tmp_name)


def to_mode(image: Image.Image, mode: str, where: str) -> np.ndarray:
  """u8 pixels of `image` in `mode` ("L" or "RGB"). 16-bit grayscale (PNG's "I;16", or "I"
  with values up to 65535) is scaled to 8 bits (round(x / 257)), where Pillow's convert would
  clip every value above 255 to white."""
  if image.mode.startswith("I;16") or image.mode == "I":
    wide = np.asarray(image).astype(np.int64)
    if wide.min(initial=0) < 0 or wide.max(initial=0) > 65535:
      raise DataError(f"image {where} holds 32-bit integer pixels (up to {wide.max()}); save it "
                      "with 8 or 16 bits per channel")
    gray = Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), mode="L")
    return np.asarray(gray.convert(mode))
  return np.asarray(image.convert(mode))


class _Reader:
  """Decodes rows of one split on demand; caches a full decode."""

  def __init__(self, files: list[_File], contents: dict[str, bytes] | None,
               channels: int, cache_file: pathlib.Path, labels: np.ndarray,
               class_names: tuple[str, ...]):
    self._files = files
    self._load: Callable[[str], bytes] = (
        contents.__getitem__ if contents is not None
        else lambda key: pathlib.Path(key).read_bytes())
    self._mode = "L" if channels == 1 else "RGB"
    self._cache_file = cache_file
    self._labels = labels
    self._class_names = class_names
    self._kept: dict[int, np.ndarray] = {}  # rows of small reads (the identity's sample)

  def _decode(self, f: _File) -> np.ndarray:
    try:
      with Image.open(io.BytesIO(self._load(f.key))) as image:
        pixels = to_mode(image, self._mode, f.key)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
      raise DataError(f"cannot decode image {f.key} ({e}); remove or replace "
                      "that file") from e
    return pixels[..., None] if pixels.ndim == 2 else pixels

  def __call__(self, indices: np.ndarray) -> np.ndarray:
    """u8[M, H, W, C] images of rows `indices`."""
    images = None
    keep = len(indices) <= KEEP_READS
    for row, index in enumerate(indices):
      pixels = self._kept.get(int(index))
      if pixels is None:
        pixels = self._decode(self._files[index])
        if keep:
          self._kept[int(index)] = pixels
      if images is None:
        images = np.empty((len(indices),) + pixels.shape, np.uint8)
      elif pixels.shape != images.shape[1:]:
        raise DataError(
            f"image {self._files[index].key} is {pixels.shape[:2]} but "
            f"{self._files[indices[0]].key} is {images.shape[1:3]}; resize "
            "every image of the dataset to one size")
      images[row] = pixels
    if images is None:
      raise DataError("no rows requested from an image folder")
    if len(indices) == len(self._files) and np.array_equal(
        indices, np.arange(len(self._files))):
      _write_cache(self._cache_file, images, self._labels,
                   self._class_names)
    return images
