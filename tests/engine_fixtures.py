"""Tiny datasets and configs for engine tests: fast on 2 CPU cores."""

import contextlib
import pathlib
import re
from unittest import mock

import numpy as np

from regularity_jax.training import default_config
from regularity_jax.training import programs


def write_tiny_npz(directory, *, n_train=96, n_test=48, num_classes=4, shape=(6, 6, 1),
                   seed=0, labels_offset=0, nan=False, class_names=None) -> pathlib.Path:
  """An npz dataset in `directory` whose classes are separable by a class-dependent mean.

  `class_names` (stored as the npz's `class_names`) declares the classes, e.g. 10 names for a
  10-logit head of which `num_classes` are used; default: the labels' classes."""
  rng = np.random.default_rng(seed)
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  means = rng.normal(size=(num_classes,) + shape).astype(np.float32)

  def make(n):
    y = np.arange(n) % num_classes
    x = means[y] + 0.8 * rng.normal(size=(n,) + shape).astype(np.float32)
    return (255 * (x - x.min()) / (x.max() - x.min())).astype(np.uint8), y

  x_train, y_train = make(n_train)
  x_test, y_test = make(n_test)
  y_train = y_train + labels_offset
  if nan:
    x_train = x_train.astype(np.float32)
    x_train[3, 0, 0, 0] = np.nan
  path = directory / "tiny.npz"
  extra = {} if class_names is None else {"class_names": np.asarray(class_names, dtype=str)}
  np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, **extra)
  return path


def tiny_dataset(data_dir) -> str:
  """The dataset spec of the tiny data in `data_dir`: its tiny.npz (else its only .npz) by
  path, so its classes and shapes come from the data (a 4-class set trains 4 logits)."""
  directory = pathlib.Path(data_dir)
  if (directory / "tiny.npz").is_file():
    return str(directory / "tiny.npz")
  npzs = sorted(directory.glob("*.npz"))
  return str(npzs[0] if len(npzs) == 1 else directory)


def tiny_config(data_dir, **overrides):
  c = default_config()
  c.dataset = tiny_dataset(data_dir) if str(data_dir) else "mnist"
  c.data_dir = ""
  c.model = "mlp"
  c.model_kwargs.hidden = (32,)
  c.num_epochs = 4
  c.batch_size = 16
  c.eval_batch_size = 32
  c.learning_rate = 0.05
  c.momentum = 0.9
  c.progress_bar = False
  c.plots = False
  c.report = False
  c.lock()
  c.model_kwargs.unlock()  # a model's keyword arguments are its own
  c.dataset_kwargs.unlock()  # and a dataset function's
  c.update_from_flattened_dict(overrides)  # dotted keys, type-checked, unknown fields refused
  return c


def check_report(path, figure_names):
  """A study report: report.md with the evidence header and each named PNG linked and written."""
  assert path.name == "report.md"
  text = path.read_text()
  assert "- **hardware**:" in text and "- **seeds**:" in text
  for name in figure_names:
    assert f"]({name})" in text
    assert (path.parent / name).read_bytes()[:4] == b"\x89PNG"
  assert "## Run reports" in text
  for link in re.findall(r"\]\(([^)]*report\.html)\)", text):  # the runs' reports exist
    assert (path.parent / link).read_text()[:15] == "<!DOCTYPE html>", link
  return text


@contextlib.contextmanager
def count_traces(max_traces: dict[str, int] | None = None):
  """Counts how often each jitted program of the engine is traced (compiled) while the block
  runs, through `programs.WRAP`; a program named in `max_traces` fails at its next trace once
  it reaches its limit (as `chex.assert_max_traces` does for one function: chex keys its
  counter on the function's code, which this one wrapper shares). Yields {name: count}."""
  counts: dict[str, int] = {}

  def wrap(name, fn):
    def traced(*args, **kwargs):
      counts[name] = counts.get(name, 0) + 1
      limit = (max_traces or {}).get(name)
      if limit is not None and counts[name] > limit:
        raise AssertionError(f"program {name!r} traced {counts[name]} times (at most {limit})")
      return fn(*args, **kwargs)
    return traced

  with mock.patch.object(programs, "WRAP", wrap):
    yield counts


def killed_in_epoch(pipeline: str, epoch: int, rows: int, then: str) -> str:
  """Python code (for `python -c`) that runs `then` with `inputs.<pipeline>.train_rows`
  patched to SIGKILL the process after `rows` rows of epoch `epoch` (1-based): a kill in the
  middle of an epoch, at a point that depends on no timing."""
  return f"""
import os, signal, sys
from regularity_jax.training import inputs
original, calls = inputs.{pipeline}.train_rows, []

def killed(self, setup, plan, num_rows):
  calls.append(1)
  for r, row in enumerate(original(self, setup, plan, num_rows)):
    if len(calls) == {epoch} and r == {rows}:
      os.kill(os.getpid(), signal.SIGKILL)
    yield row

inputs.{pipeline}.train_rows = killed
{then}
"""


def user_folder(tmp_path_factory, **files: str):
  """A folder outside the repository holding a user's files (`name=text`: name.py)."""
  folder = tmp_path_factory.mktemp("user")
  for name, text in files.items():
    (folder / f"{name}.py").write_text(text)
  assert pathlib.Path(__file__).resolve().parents[1] not in folder.parents
  return folder
