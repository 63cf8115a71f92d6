"""regularity_jax.logs (NumPy only): the Logger's files, reading them back, and its one-line
errors; the Recorder's refusal of an existing directory. Milliseconds each: the replay, which
compiles, is tested in tests/test_any_loop.py (slow)."""

import pathlib

import numpy as np
import pytest

from regularity_jax import logs
from regularity_jax.logs import format as fmt


def _batch(rng, n, c, b):
  return rng.integers(0, n, b), rng.normal(size=(b, c)).astype(np.float32), rng.integers(0, c, b)


def test_round_trip_keeps_batches_rows_and_dtypes(tmp_path):
  rng = np.random.default_rng(0)
  batches = [_batch(rng, 20, 3, b) for b in (5, 4, 6)]
  with logs.Logger(tmp_path, num_examples=20, num_classes=3, chunk_rows=7) as logger:
    for ids, z, y in batches:
      logger.log(ids, z, y, epoch=0)
  got = logs.read(tmp_path)
  (epoch,) = got.streams[(0, "train", "presentation")]
  np.testing.assert_array_equal(epoch.sizes, [5, 4, 6])
  np.testing.assert_array_equal(epoch.ids, np.concatenate([b[0] for b in batches]))
  np.testing.assert_array_equal(epoch.labels, np.concatenate([b[2] for b in batches]))
  np.testing.assert_array_equal(epoch.logits, np.concatenate([b[1] for b in batches]))
  assert epoch.labels.dtype == np.uint8 and epoch.logits.dtype == np.float32
  assert got.num_examples == {"train": 20, "test": 20} and got.num_classes == 3
  # 2 chunks (7 rows buffered, then the rest at close): 4 + 4 + 1 + 12 bytes a row.
  assert got.bytes < 20 + 15 * 21 + 2 * 200 + 200


def test_float16_halves_the_logits_and_masked_rows_are_not_written(tmp_path):
  rng = np.random.default_rng(1)
  ids, z, y = _batch(rng, 10, 4, 6)
  ids[-2:] = -1  # padding
  mask = ids >= 0
  with logs.Logger(tmp_path, num_examples=10, num_classes=4, float16=True) as logger:
    logger.log(ids, z, y, epoch=3, mask=mask)
  (epoch,) = logs.read(tmp_path).streams[(0, "train", "presentation")]
  assert epoch.logits.dtype == np.float16 and epoch.epoch == 3
  np.testing.assert_array_equal(epoch.sizes, [4])
  np.testing.assert_array_equal(epoch.logits, z[:4].astype(np.float16))


def test_a_chunk_cut_mid_write_is_read_up_to_the_last_complete_chunk(tmp_path, capsys):
  rng = np.random.default_rng(2)
  with logs.Logger(tmp_path, num_examples=10, num_classes=2, chunk_rows=1) as logger:
    for e in range(3):
      logger.log(*_batch(rng, 10, 2, 3), epoch=e)
  (path,) = tmp_path.glob("*.rjlog")
  data = path.read_bytes()
  path.write_bytes(data[:-10])  # the last chunk loses its end
  got = logs.read(tmp_path)
  assert [e.epoch for e in got.streams[(0, "train", "presentation")]] == [0, 1]
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and str(path) in err[0] and "last complete chunk (2 chunks)" in err[0]
  path.write_bytes(data[:-4] + b"\0\0\0\0")  # a wrong checksum: the same
  assert len(logs.read(tmp_path).streams[(0, "train", "presentation")]) == 2
  assert "checksum" in capsys.readouterr().err


def test_an_epoch_logged_again_replaces_the_earlier_records(tmp_path):
  rng = np.random.default_rng(3)
  first = _batch(rng, 10, 2, 4)
  with logs.Logger(tmp_path, num_examples=10, num_classes=2) as logger:
    logger.log(*first, epoch=0)
    logger.log(*_batch(rng, 10, 2, 4), epoch=1)   # then the loop crashed, resumed from epoch 1
  again = [_batch(rng, 10, 2, 3), _batch(rng, 10, 2, 2)]
  with logs.Logger(tmp_path, num_examples=10, num_classes=2) as logger:  # a new session
    for batch in again:
      logger.log(*batch, epoch=1)
  with logs.Logger(tmp_path, num_examples=10, num_classes=2) as logger:  # in one session:
    logger.log(*_batch(rng, 10, 2, 4), epoch=2)
    logger.log(*_batch(rng, 10, 2, 4), epoch=3)
    last = _batch(rng, 10, 2, 5)
    logger.log(*last, epoch=2)                       # epoch 2 again after epoch 3
  epochs = logs.read(tmp_path).streams[(0, "train", "presentation")]
  assert [e.epoch for e in epochs] == [0, 1, 2, 3]
  np.testing.assert_array_equal(epochs[0].ids, first[0])
  np.testing.assert_array_equal(epochs[1].sizes, [3, 2])
  np.testing.assert_array_equal(epochs[1].ids, np.concatenate([b[0] for b in again]))
  np.testing.assert_array_equal(epochs[2].ids, last[0])


def test_ranks_write_their_own_files_and_merge_step_by_step(tmp_path):
  rng = np.random.default_rng(4)
  steps = [[_batch(rng, 30, 3, 4) for _ in range(2)] for _ in range(3)]  # [step][rank]
  loggers = [logs.Logger(tmp_path, num_examples=30, num_classes=3, rank=r) for r in (1, 0)]
  for step in steps:
    for logger, rank in zip(loggers, (1, 0)):
      logger.log(*step[rank], epoch=0)
  for logger in loggers:
    logger.close()
  assert len(list(tmp_path.glob("*.rjlog"))) == 2
  (epoch,) = logs.read(tmp_path).streams[(0, "train", "presentation")]
  np.testing.assert_array_equal(epoch.sizes, [8, 8, 8])  # one update per step: both ranks
  np.testing.assert_array_equal(epoch.ids, np.concatenate([b[0] for s in steps for b in s]))
  np.testing.assert_array_equal(epoch.logits, np.concatenate([b[1] for s in steps for b in s]))


def test_float16_refuses_logits_beyond_its_range(tmp_path):
  with logs.Logger(tmp_path, num_examples=10, num_classes=2, float16=True) as logger:
    with pytest.raises(logs.LogError, match="beyond float16's range"):
      logger.log([0], [[7e4, 0.0]], [0], epoch=0)


@pytest.mark.parametrize("call,message", [
    (lambda g: g.log([0, 12], np.zeros((2, 3)), [0, 1], epoch=0),
     "1 train ids outside [0, 10) (first 12)"),
    (lambda g: g.log([0, -1], np.zeros((2, 3)), [0, 1], epoch=0),
     "pass mask= False for padding rows"),
    (lambda g: g.log([0, 1], np.zeros((2, 4)), [0, 1], epoch=0),
     "logits of shape (2, 4)"),
    (lambda g: g.log([0, 1], np.zeros((2, 3)), [0, 3], epoch=0), "labels outside [0, 3)"),
    (lambda g: g.log([0], np.zeros((1, 3)), [0], epoch=0, split="test"),
     "log its eval-mode logits with stream='evaluation'"),
    (lambda g: g.log([0, 1], np.zeros((2, 3)), [0], epoch=0), "must be [2]"),
])
def test_bad_batches_end_in_one_line(tmp_path, call, message):
  logger = logs.Logger(tmp_path, num_examples=10, num_classes=3)
  logger.log([1], np.zeros((1, 3)), [2], epoch=0)
  with pytest.raises(logs.LogError) as e:
    call(logger)
  assert message in str(e.value) and "\n" not in str(e.value)
  logger.close()


def test_logits_of_another_width_in_one_directory_end_in_one_line(tmp_path):
  with logs.Logger(tmp_path, num_examples=10, num_classes=3) as logger:
    logger.log([1], np.zeros((1, 3)), [2], epoch=0)
  with logs.Logger(tmp_path, num_examples=10, num_classes=4) as logger:
    logger.log([1], np.zeros((1, 4)), [2], epoch=1)
  with pytest.raises(logs.LogError, match="one log directory holds one run's logs") as e:
    logs.read(tmp_path)
  assert "\n" not in str(e.value)
  with pytest.raises(logs.LogError, match="no log files"):
    logs.read(tmp_path / "nothing")


def test_format_header_is_what_the_docs_say(tmp_path):
  """docs/logs_format.md: MAGIC, u32 length, JSON; chunks: CHUNK, u32, u64, JSON, arrays, crc."""
  with logs.Logger(tmp_path, num_examples=5, num_classes=2, rank=3) as logger:
    logger.log([4], np.ones((1, 2)), [1], epoch=0)
  (path,) = tmp_path.glob("rank00003-*.rjlog")
  data = path.read_bytes()
  assert data[:8] == b"RJLOG\x001\n" == fmt.MAGIC
  n = int.from_bytes(data[8:12], "little")
  assert data[12 + n:12 + n + 8] == b"RJCHUNK\n"
  doc = (pathlib.Path(__file__).parents[1] / "docs" / "logs_format.md").read_text()
  assert "RJLOG\\x001\\n" in doc and "RJCHUNK\\n" in doc


def test_recorder_refuses_an_existing_run_directory_in_one_line(tmp_path):
  from regularity_jax import Recorder, RecorderError  # pylint: disable=import-outside-toplevel
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "scores.npz").write_bytes(b"x")
  with pytest.raises(RecorderError, match="already exists; nothing was changed") as e:
    Recorder(tmp_path / "run", ids={"train": [0]}, labels={"train": [0]})
  assert "\n" not in str(e.value)
  assert (tmp_path / "run" / "scores.npz").read_bytes() == b"x"
