"""Datasets from local files, the format detected from what a directory holds.

Formats, tried in this order (the first one present wins):

1. `NAME.npz` (e.g. `cifar10.npz`) with arrays `x_train, y_train, x_test,
   y_test` and optionally `class_names`; uint8 images are scaled to [0, 1],
   float images are used as they are.
2. IDX (MNIST, Fashion-MNIST): `train-images-idx3-ubyte.gz`,
   `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`,
   `t10k-labels-idx1-ubyte.gz`, gzipped or not.
3. The CIFAR python release, for `cifar10` / `cifar100` only:
   `cifar-10-python.tar.gz` or its extracted `cifar-10-batches-py/`
   (`data_batch_1..5`, `test_batch`); `cifar-100-python.tar.gz` or
   `cifar-100-python/` (`train`, `test`, fine labels).
4. SVHN's `train_32x32.mat` and `test_32x32.mat` (label 10 means digit 0).
5. An image folder `train/<class>/*`, `test/<class>/*`, extracted or as the
   only `*.tar.gz` / `*.tgz` / `*.tar` in the directory (see `image_folders`).
6. The only `*.npz` in the directory, keys as in 1.

Canonical order (what example ids index) is the order in the files: IDX and
npz row order, CIFAR batch order, SVHN column order; image folders sort by
(class index, file name).
"""

from __future__ import annotations

import gzip
import io
import os
import pathlib
import zipfile
import zlib
import pickle
import tarfile

import numpy as np

from regularity_jax.data import image_folders
from regularity_jax.data.catalog import DatasetInfo
from regularity_jax.data.raw import RawData, in_memory
from regularity_jax.data.types import DataError

_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
_FIX = "pass --config.data_dir=DIR holding those files"


def load_local(info: DatasetInfo, data_dir: str | os.PathLike,
               cache_dir: str | os.PathLike | None = None) -> RawData:
  """Loads dataset `info.name` from the files in `data_dir`.

  Args:
    info: the dataset's catalog entry.
    data_dir: a directory holding one of the formats in the module docstring.
    cache_dir: where image folders cache their decoded arrays.

  Returns:
    The `RawData`, in canonical order.

  Raises:
    DataError: the directory is missing or holds no recognizable files.
  """
  root = pathlib.Path(data_dir).expanduser().resolve()
  if not root.is_dir():
    what = "is a file, not a directory" if root.exists() else "does not exist"
    raise DataError(
        f"data_dir {root} {what}: expected a directory holding "
        f"{_expected(info)}; {_FIX}")
  named_npz = root / f"{info.name}.npz"
  if named_npz.is_file():
    return load_npz(named_npz)
  if _find_idx(root, "train")[0] is not None:
    return load_idx(root)
  cifar = _find_cifar(root, info.name)
  if cifar is not None:
    return load_cifar(cifar, info.name)
  if (root / "train_32x32.mat").is_file():
    return load_svhn_mat(root)
  if (root / "train").is_dir() or (root / "test").is_dir():
    return image_folders.load_image_folder(root, info, cache_dir=cache_dir)
  archives = sorted(p for p in root.iterdir()
                    if p.is_file() and p.name.endswith(_ARCHIVE_SUFFIXES)
                    and not p.name.startswith("cifar-1"))
  if len(archives) == 1:
    return image_folders.load_image_folder(archives[0], info,
                                           cache_dir=cache_dir)
  if len(archives) > 1:
    names = ", ".join(p.name for p in archives)
    raise DataError(
        f"several archives in {root} ({names}): expected one image-folder "
        f"archive for {info.name}; keep only one of them there or pass "
        "--config.data_dir=DIR of its own")
  npzs = sorted(root.glob("*.npz"))
  if len(npzs) == 1:
    return load_npz(npzs[0])
  found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
  shown = ", ".join(found[:8]) + (", ..." if len(found) > 8 else "")
  raise DataError(
      f"no {info.name} files in {root} (found: {shown or 'nothing'}): "
      f"expected {_expected(info)}; {_FIX}")


def _expected(info: DatasetInfo) -> str:
  native = "" if info.name == "mnist1d" else f"{info.native_files}, or "
  return (f"{native}train/<class>/ and test/<class>/ image folders (or one "
          f".tar.gz of them), or {info.name}.npz with x_train, y_train, "
          "x_test, y_test")


# ----------------------------------------------------------------------------
# npz


def load_npz(path: pathlib.Path) -> RawData:
  """Loads an .npz with `x_train, y_train, x_test, y_test[, class_names]`.

  Args:
    path: the .npz file. Images: u8|float [N, H, W, C], [N, H, W] or [N, D].

  Returns:
    The `RawData`.
  """
  with open(path, "rb") as f:
    head = f.read(4)
  if head != b"PK\x03\x04":  # every .npz is a zip archive
    raise DataError(
        f"{path} is not an .npz file (it does not start as a zip archive: first bytes "
        f"{head!r}); write it with np.savez(path, x_train=..., y_train=..., x_test=..., "
        "y_test=...)")
  try:
    with np.load(path, allow_pickle=False) as f:
      arrays = {k: f[k] for k in f.files}
  except ValueError as e:
    if "pickle" not in str(e):
      raise DataError(f"cannot read {path} as .npz ({e}); it may be truncated: write it "
                      "again with np.savez") from e
    raise DataError(
        f"cannot read {path} without pickle ({e}); save plain arrays, e.g. "
        "class_names as np.asarray(names, dtype=str)") from e
  except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
    raise DataError(f"cannot read {path} as .npz ({type(e).__name__}: {e}); it may be "
                    "truncated or damaged: write it again with np.savez") from e
  missing = [k for k in ("x_train", "y_train", "x_test", "y_test")
             if k not in arrays]
  if missing:
    raise DataError(
        f"{path} lacks {', '.join(missing)} (has {', '.join(sorted(arrays))})"
        "; save it with np.savez(path, x_train=..., y_train=..., "
        "x_test=..., y_test=...)")
  names = arrays.get("class_names")
  return RawData(
      train=in_memory(arrays["x_train"], arrays["y_train"], split="train",
                      where=str(path)),
      test=in_memory(arrays["x_test"], arrays["y_test"], split="test",
                     where=str(path)),
      source=f"local:{path}",
      class_names=None if names is None else tuple(str(n) for n in names),
      any_shape=True)


# ----------------------------------------------------------------------------
# IDX


def _find_idx(root: pathlib.Path,
              split: str) -> tuple[pathlib.Path | None, pathlib.Path | None]:
  found = []
  for stem in _IDX_NAMES[split]:
    paths = [root / (stem + ".gz"), root / stem]
    found.append(next((p for p in paths if p.is_file()), None))
  return found[0], found[1]


def read_idx(path: pathlib.Path) -> np.ndarray:
  """Reads one IDX file of unsigned bytes (gzipped when named *.gz).

  Args:
    path: an idx1 (labels) or idx3 (images) ubyte file.

  Returns:
    u8[N] for idx1, u8[N, H, W] for idx3.
  """
  opener = gzip.open if path.name.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      data = f.read()
  except (OSError, EOFError) as e:
    raise DataError(f"cannot read {path} ({e}); replace it with an intact "
                    "copy") from e
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
    raise DataError(f"{path} is not an IDX file of unsigned bytes (bad magic "
                    "number); replace it with the original IDX file")
  ndim = data[3]
  shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big")
                for i in range(ndim))
  offset = 4 + 4 * ndim
  if len(data) - offset != int(np.prod(shape)):
    raise DataError(f"{path} holds {len(data) - offset} bytes of data but its "
                    f"header says {shape}; replace it with an intact copy")
  return np.frombuffer(data, np.uint8, offset=offset).reshape(shape)


def load_idx(root: pathlib.Path) -> RawData:
  """Loads the four MNIST-style IDX files in `root`.

  Args:
    root: directory with train/t10k images/labels IDX files (.gz or not).

  Returns:
    The `RawData`, images u8[N, 28, 28, 1] for MNIST.
  """
  splits = {}
  for split in ("train", "test"):
    images_path, labels_path = _find_idx(root, split)
    if images_path is None or labels_path is None:
      missing = [s for s, p in zip(_IDX_NAMES[split], (images_path,
                                                       labels_path))
                 if p is None]
      raise DataError(
          f"IDX files in {root} are incomplete: missing "
          f"{', '.join(m + '.gz' for m in missing)}; put all four of "
          f"{', '.join(n + '.gz' for s in _IDX_NAMES.values() for n in s)} "
          "there")
    splits[split] = in_memory(read_idx(images_path), read_idx(labels_path),
                              split=split, where=str(images_path))
  return RawData(train=splits["train"], test=splits["test"],
                 source=f"local:{root}")


# ----------------------------------------------------------------------------
# CIFAR python release


class _ArrayUnpickler(pickle.Unpickler):
  """Unpickles plain containers and numpy arrays, nothing executable."""

  _ALLOWED = {"_reconstruct", "ndarray", "dtype", "scalar", "frombuffer"}

  def find_class(self, module, name):
    if ((module.split(".")[0] == "numpy" and name in self._ALLOWED)
        or (module, name) == ("_codecs", "encode")):
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(data: bytes, where: str) -> dict:
  try:
    obj = _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
  except Exception as e:  # pickle raises many kinds on malformed input.
    raise DataError(f"cannot unpickle {where} ({type(e).__name__}: {e}); "
                    "replace it with the original CIFAR python file") from e
  if not isinstance(obj, dict):
    raise DataError(f"{where} does not hold a dict; replace it with the "
                    "original CIFAR python file")
  return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _find_cifar(root: pathlib.Path, name: str) -> pathlib.Path | None:
  stem = {"cifar10": "cifar-10", "cifar100": "cifar-100"}.get(name)
  if stem is None:
    return None
  folder = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
  for candidate in (root / folder, root / f"{stem}-python.tar.gz"):
    if candidate.exists():
      return candidate
  own = (("test_batch",) if name == "cifar10" else ("meta", "train"))
  if all((root / f).is_file() for f in own):
    return root  # data_dir is the extracted folder itself.
  return None


def _cifar_files(path: pathlib.Path, wanted: set[str]) -> dict[str, bytes]:
  """Reads the members named in `wanted` from a CIFAR folder or archive."""
  files = {}
  if path.is_dir():
    for name in wanted:
      if (path / name).is_file():
        files[name] = (path / name).read_bytes()
    return files
  try:
    with tarfile.open(path, "r:*") as tar:
      for member in tar:
        base = member.name.rsplit("/", 1)[-1]
        if member.isfile() and base in wanted:
          files[base] = tar.extractfile(member).read()
  except (tarfile.TarError, OSError, EOFError) as e:
    raise DataError(f"cannot read {path} ({e}); replace it with an intact "
                    "copy of the CIFAR python archive") from e
  return files


def load_cifar(path: pathlib.Path, name: str) -> RawData:
  """Loads the CIFAR-10 / CIFAR-100 python release (pickled batches).

  Args:
    path: `cifar-10-python.tar.gz`, `cifar-100-python.tar.gz`, or an
      extracted folder holding the batch files.
    name: "cifar10" or "cifar100" (fine labels).

  Returns:
    The `RawData`, images u8[N, 32, 32, 3], class names from the meta file.
  """
  if name == "cifar10":
    train_files = [f"data_batch_{i}" for i in range(1, 6)]
    test_files, meta, label_key, names_key = (["test_batch"], "batches.meta",
                                              "labels", "label_names")
  else:
    train_files, test_files, meta, label_key, names_key = (
        ["train"], ["test"], "meta", "fine_labels", "fine_label_names")
  files = _cifar_files(path, set(train_files + test_files + [meta]))
  missing = [f for f in train_files + test_files if f not in files]
  if missing:
    raise DataError(f"{path} lacks {', '.join(missing)}; use the complete "
                    f"{name} python release")

  def split(members, split_name):
    images, labels = [], []
    for member in members:
      batch = _unpickle(files[member], f"{path}:{member}")
      if "data" not in batch or label_key not in batch:
        raise DataError(f"{path}:{member} has no 'data'/'{label_key}' entries; "
                        f"replace it with the original {name} python file")
      data = np.asarray(batch["data"], np.uint8)
      images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
      labels.append(np.asarray(batch[label_key], np.int64))
    return in_memory(np.concatenate(images), np.concatenate(labels),
                     split=split_name, where=str(path))

  class_names = None
  if meta in files:
    names = _unpickle(files[meta], f"{path}:{meta}").get(names_key)
    if names is not None:
      class_names = tuple(n.decode() if isinstance(n, bytes) else str(n)
                          for n in names)
  return RawData(train=split(train_files, "train"),
                 test=split(test_files, "test"), source=f"local:{path}",
                 class_names=class_names)


# ----------------------------------------------------------------------------
# SVHN .mat


def load_svhn_mat(root: pathlib.Path) -> RawData:
  """Loads SVHN cropped digits from `train_32x32.mat` and `test_32x32.mat`.

  Needs scipy (a dependency of jax). `extra_32x32.mat` is not used, as in
  TFDS's train/test splits.

  Args:
    root: directory with the two .mat files.

  Returns:
    The `RawData`, images u8[N, 32, 32, 3], labels 0..9 (the file's 10 is 0).
  """
  try:
    from scipy import io as scipy_io  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise DataError("reading SVHN .mat files needs scipy, which is not "
                    "installed; pip install scipy, or convert them to "
                    "svhn_cropped.npz") from e
  splits = {}
  for split in ("train", "test"):
    path = root / f"{split}_32x32.mat"
    if not path.is_file():
      raise DataError(f"{root} has train_32x32.mat but no {path.name}; put "
                      "both SVHN .mat files there")
    try:
      mat = scipy_io.loadmat(path)
    except Exception as e:  # scipy raises several kinds on bad files.
      raise DataError(f"cannot read {path} ({e}); replace it with the "
                      "original SVHN file") from e
    images = np.transpose(mat["X"], (3, 0, 1, 2))
    labels = np.asarray(mat["y"], np.int64).reshape(-1) % 10
    splits[split] = in_memory(images, labels, split=split, where=str(path))
  return RawData(train=splits["train"], test=splits["test"],
                 source=f"local:{root}")
