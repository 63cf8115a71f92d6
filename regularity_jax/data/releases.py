"""What a catalog name's known release looks like, and the check that data given that name are it.

A catalog name ("mnist") promises a dataset: its class names, its example ids. Data loaded
under the name are compared with what is known of the release, cheaply (sizes, label counts,
the (id, label) fingerprint and the content hash of `identity`):

  * the release's sizes but other label counts, or (where the release's order is known) other
    (id, label) pairs: other data. Refused in one line that names the door for one's own data
    (`--config.dataset=/path/data.npz` or an image folder), which takes classes and shapes from
    the data. Fashion-MNIST files given as `mnist` end here (6000 per class, not MNIST's counts).
  * other sizes: a part of the release (the studies retrain on subsets written as NAME.npz) or
    other data; not compared, and the identity's `release` says "unchecked" with the sizes.
  * the same ids and labels but other pixels at the sampled rows: the data load with one
    warning line, and the identity's `release` says so (the shared CIFAR-10 JPEG q75 copy is
    known by its content hash and named as such).

Known orders: a release's own file order ("rows": IDX, the CIFAR python batches) and any
image folder's order (by class, then file name: "by class"), which follows from the label
counts alone. TFDS numbers examples in its own order; only sizes and label counts are checked
there.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from regularity_jax.data import types
from regularity_jax.data.identity import DataIdentity, fingerprint
from regularity_jax.data.types import DataError

DOOR = ("pass your own data by path instead (--config.dataset=/path/to/data.npz or an image "
        "folder train/<class>/, test/<class>/), which takes its classes and shapes from the "
        "data (docs/your_data.md)")


@dataclasses.dataclass(frozen=True)
class Release:
  """What is known of a catalog name's release.

  Attributes:
    sizes: (train, test) examples.
    counts: (train, test) examples per label, or () when not known.
    rows: the (train, test) (id, label) fingerprints in the release's file order, or ().
    content: {(source order, content hash): description} of known copies; "exact" for the
      release itself, else what the copy is (e.g. a lossy re-encoding).
  """

  sizes: tuple[int, int]
  counts: tuple[tuple[int, ...], tuple[int, ...]] | tuple = ()
  rows: tuple[str, str] | tuple = ()
  content: dict = dataclasses.field(default_factory=dict)


_MNIST_COUNTS = ((5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
                 (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009))

# Fingerprints and content hashes measured on the files of ../shared/data (README there: the
# MNIST and Fashion-MNIST IDX files are the published ones; CIFAR-10 is the JPEG q75 copy).
RELEASES = {
    "mnist": Release((60000, 10000), _MNIST_COUNTS, ("08306db153c55329", "b7d626db2cdb485f"),
                     {("rows", "cf5db5b1c690df60"): "exact"}),
    "fashion_mnist": Release((60000, 10000), ((6000,) * 10, (1000,) * 10),
                             ("0eb1c4dab1764371", "fb2b31d1602cc5b4"),
                             {("rows", "5eef2b9a4ce95908"): "exact"}),
    "cifar10": Release((50000, 10000), ((5000,) * 10, (1000,) * 10), (),
                       {("by class", "8b077a6f2431ad13"):
                        "the CIFAR-10 JPEG q75 copy: every image re-encoded, lossy"}),
    "cifar100": Release((50000, 10000), ((500,) * 100, (100,) * 100)),
    "svhn_cropped": Release((73257, 26032)),
}


def _by_class(counts) -> str:
  labels = np.repeat(np.arange(len(counts)), counts)
  return fingerprint(np.arange(len(labels)), labels)


def check(name: str, raw, identity: DataIdentity) -> str:
  """Compares data loaded as catalog name `name` with its release; returns the identity's
  `release` entry ("exact", "unchecked", or what differs) or raises DataError (one line)."""
  release = RELEASES.get(name)
  if release is None:
    return "unchecked"
  where = f"{raw.source} (given as {name})"
  if tuple(identity.sizes) != release.sizes:
    # A part of the release (the studies write the subsets they retrain on as NAME.npz) or
    # other data: nothing to compare example by example; the identity says so.
    return (f"not the release's sizes ({identity.sizes[0]}/{identity.sizes[1]} examples, the "
            f"release {release.sizes[0]}/{release.sizes[1]}): a part of it or other data, "
            "unchecked")
  for k, split in enumerate((raw.train, raw.test)):
    if not release.counts:
      break
    counts = tuple(np.bincount(np.asarray(split.labels, np.int64),
                               minlength=len(release.counts[k])).tolist())
    if counts != tuple(release.counts[k]):
      raise DataError(f"{where}: its {('train', 'test')[k]} labels count {list(counts[:10])}"
                      f"{'...' if len(counts) > 10 else ''} examples per class, {name}'s release "
                      f"{list(release.counts[k][:10])}: these are other data (another dataset's "
                      f"files?); {DOOR}")
  order = None
  if release.rows and tuple(identity.fingerprints) == tuple(release.rows):
    order = "rows"
  elif release.counts and identity.fingerprints[0] == _by_class(release.counts[0]) and (
      identity.fingerprints[1] == _by_class(release.counts[1])):
    order = "by class"
  elif release.rows and raw.source.split(":", 1)[0] == "local":
    raise DataError(f"{where} has other (id, label) pairs than {name}'s release (in its file "
                    "order or by class): the same id would name another example; "
                    f"{DOOR}")
  known = {h: what for (o, h), what in release.content.items() if o == order}
  if not known:
    return "unchecked"
  what = known.get(identity.content)
  if what == "exact":
    return "exact"
  if what is None:
    what = "other pixels than the release's at the sampled ids"
  message = f"ids and labels match {name}'s release; pixels differ ({what})"
  types.warn(f"{where}: {message}; scores and accuracies describe these pixels")
  return message
