"""Scores and the report from any training loop (docs/any_loop.md), one test per door:

  - a hand-written JAX loop drives the kernels and `regularity_jax.Recorder`; an engine run
    prunes by its scores, and an engine run on other data is refused in one line;
  - `regularity_jax.logs.Logger` imports without JAX;
  - logs replayed (`logs.replay`) equal the kernels fed the same logits directly;
  - a PyTorch loop on an MNIST subset logs, the command `python -m regularity_jax.score_logs`
    (its `main`, in this process) scores it, and scores.npz equals the kernels fed the same
    logits.

Each trains, compiles or starts a process: the slow tier.
"""

import gzip
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regularity_jax import logs
from regularity_jax import metrics
from regularity_jax import Recorder
from regularity_jax.logs import replay
from regularity_jax.runs import scores_file
from tests import engine_fixtures

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[1]
MNIST = pathlib.Path(os.environ.get("REGULARITY_JAX_SHARED_DATA", REPO.parent / "shared" / "data")
                     ) / "mnist"


def _assert_tables_equal(got, want, keys=None):
  """Integers and booleans exactly, floats within float32 rounding."""
  for key in keys or [k for k in want if np.ndim(want[k]) == 1]:
    g, w = np.asarray(got[key]), np.asarray(want[key])
    if w.dtype.kind in "iub":
      np.testing.assert_array_equal(g, w, err_msg=key)
    else:
      np.testing.assert_allclose(g, w, rtol=2e-6, atol=1e-6, err_msg=key)


def _linear_loop(x, y, x_test, y_test, *, epochs=3, batch=16, seed=0):
  """A plain JAX loop: softmax regression by SGD, tracked by the kernels (presentations) and an
  evaluation of the test split after each epoch."""
  n, c = len(y), int(y.max()) + 1
  tracker, test_tracker = metrics.Tracker(n), metrics.Tracker(len(y_test))
  state, test_state = tracker.init(), test_tracker.init()
  params = {"w": jnp.zeros((x.shape[1], c)), "b": jnp.zeros((c,))}

  def loss_fn(p, xb, yb):
    logits = xb @ p["w"] + p["b"]
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(yb)), yb]), logits

  @jax.jit
  def step(p, s, ids, xb, yb):
    (loss, logits), g = jax.value_and_grad(loss_fn, has_aux=True)(p, xb, yb)
    s = tracker.update(s, ids, logits, yb)        # the step's own train-mode logits
    return jax.tree.map(lambda a, b: a - 0.5 * b, p, g), s, loss

  records, rng = [], np.random.default_rng(seed)
  for epoch in range(epochs):
    order = rng.permutation(n)
    for start in range(0, n, batch):
      ids = order[start:start + batch]
      params, state, loss = step(params, state, ids, x[ids], y[ids])
    logits = x_test @ params["w"] + params["b"]
    test_state = _jitted_update(test_tracker)(test_state, np.arange(len(y_test)), logits, y_test)
    records.append({"epoch": epoch + 1, "train_loss": float(loss),
                    "test_accuracy": float(jnp.mean(jnp.argmax(logits, -1) == y_test))})
  return tracker, state, test_state, records


def test_jax_loop_recorder_then_an_engine_run_prunes_by_its_scores(tmp_path):
  from regularity_jax.training import train_and_evaluate  # pylint: disable=import-outside-toplevel
  path = engine_fixtures.write_tiny_npz(tmp_path / "data", n_train=96, n_test=48)
  with np.load(path) as z:
    x, y, x_test, y_test = (z["x_train"], z["y_train"], z["x_test"], z["y_test"])
  flat = lambda a: a.reshape(len(a), -1).astype(np.float32) / 255.0
  tracker, state, test_state, records = _linear_loop(flat(x), y, flat(x_test), y_test)
  recorder = Recorder(tmp_path / "mine", ids={"train": np.arange(96), "test": np.arange(48)},
                      labels={"train": y, "test": y_test}, name="tiny",
                      class_names=["a", "b", "c", "d"],
                      examples={"train": x / 255.0, "test": x_test / 255.0}, model="linear")
  run = recorder.write(tracker=tracker, train=state, test=test_state, metrics=records)
  scores = scores_file.load(run / "scores.npz")
  want = jax.device_get(tracker.summarize(state))
  _assert_tables_equal({k: scores[f"train/{k}"] for k in tracker.summary_keys}, want,
                       tracker.summary_keys)
  assert scores.provenance["data_identity"]["content"] == ""  # known from ids and labels
  for name in ("learning_curves", "forgetting_histogram", "data_map"):
    assert (run / "plots" / f"{name}.png").is_file()
  page = (run / "report.html").read_text()
  assert "No plots" not in page and "data:image/png" in page and ">id 0<" not in page

  config = engine_fixtures.tiny_config(tmp_path / "data", num_epochs=1, **{
      "pruning.fraction_kept": 0.5, "pruning.score": "forgetting",
      "pruning.scores_path": str(run / "scores.npz")})
  # dataset=: the engine's own Dataset, whose DataIdentity (pixels included) is recorded as is.
  from regularity_jax.training import setup  # pylint: disable=import-outside-toplevel
  engine_data = setup.load_data(config)
  full = Recorder(tmp_path / "full", dataset=engine_data).write(
      tracker=tracker, train=state, test=test_state, plots=False, report=False)
  assert (scores_file.load(full / "scores.npz").provenance["data_identity"]
          == engine_data.identity.record())
  result = train_and_evaluate(config, tmp_path / "pruned")
  assert result.metrics[-1]["examples_presented"] == 48

  other = engine_fixtures.write_tiny_npz(tmp_path / "other", n_train=96, n_test=48)
  with np.load(other) as z:
    arrays = dict(z)
  arrays["y_train"] = np.roll(arrays["y_train"], 1)  # the same ids, other labels
  np.savez(other, **arrays)
  config = engine_fixtures.tiny_config(tmp_path / "other", num_epochs=1, **{
      "pruning.fraction_kept": 0.5, "pruning.score": "forgetting",
      "pruning.scores_path": str(run / "scores.npz")})
  with pytest.raises(scores_file.ScoresFileError, match="other \\(id, label\\) pairs") as e:
    train_and_evaluate(config, tmp_path / "refused")
  assert "\n" not in str(e.value)
  assert not (tmp_path / "refused" / "scores.npz").exists()


def test_logger_imports_and_writes_without_jax(tmp_path):
  """A PyTorch environment: `import jax` fails, the Logger works."""
  code = f"""
import sys
class NoJax:
  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] in ('jax', 'jaxlib', 'flax'):
      raise ImportError('jax is blocked in this test')
sys.meta_path.insert(0, NoJax())
import numpy as np
from regularity_jax.logs import Logger, read
with Logger({str(tmp_path)!r}, num_examples=4, num_classes=2) as logger:
  logger.log(np.arange(4), np.zeros((4, 2)), [0, 1, 0, 1], epoch=0)
assert read({str(tmp_path)!r}).rows == 4
assert not any(m.split('.')[0] in ('jax', 'jaxlib', 'flax') for m in sys.modules)
try:
  import jax
except ImportError:
  print('ok without jax')
"""
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
  assert out.returncode == 0, out.stderr
  assert out.stdout.strip() == "ok without jax"


_JITTED = {}


def _jitted_update(tracker):
  """`tracker.update`, jitted (the kernels as a loop calls them inside its step)."""
  return _JITTED.setdefault(tracker, jax.jit(tracker.update))


def _log_and_track(directory, batches, *, num_examples, num_classes, float16=False,
                   ranks=1):
  """Logs `batches` ((seed, split, stream, epoch, ids, logits, labels, mask) each) and feeds
  the same rows to the kernels; returns {(seed, table): summary table}. With ranks=2, each
  batch is split between two writers (rank r logs rows r::2) and the kernels get the merged
  batch, as the replay merges them."""
  loggers = [logs.Logger(directory, num_examples=num_examples, num_classes=num_classes,
                         rank=r, float16=float16, chunk_rows=50) for r in range(ranks)]
  states, trackers = {}, {}
  for seed, split, stream, epoch, ids, z, y, mask in batches:
    table = replay.TABLES[(split, stream)]
    size = num_examples[split]
    trackers.setdefault(table, metrics.Tracker(size))
    key = (seed, table)
    states.setdefault(key, trackers[table].init())
    parts = [np.arange(r, len(ids), ranks) for r in range(ranks)]
    for r, rows in enumerate(parts):
      loggers[r].log(ids[rows], z[rows], y[rows], epoch=epoch, seed=seed, split=split,
                     stream=stream, mask=mask[rows])
    order = np.concatenate(parts)
    fed = z.astype(np.float16).astype(np.float32) if float16 else z
    states[key] = _jitted_update(trackers[table])(states[key], ids[order], fed[order],
                                                   y[order], mask[order])
  for logger in loggers:
    logger.close()
  return {k: jax.device_get(trackers[k[1]].summarize(s)) for k, s in states.items()}


def _batches(rng, *, n_train=40, n_test=24, c=5, epochs=3, batch=12, seeds=(0, 1)):
  """Presentations with ids repeated within and across batches and padded rows (mask False,
  id -1), and an evaluation of the test split each epoch, for each seed."""
  out = []
  labels = rng.integers(0, c, n_train)
  test_labels = rng.integers(0, c, n_test)
  for seed in seeds:
    for epoch in range(epochs):
      for _ in range(5):
        ids = rng.integers(0, n_train, batch)
        ids[1] = ids[0]                            # a repeat within the batch
        mask = np.ones(batch, bool)
        mask[-3:] = False
        ids[-3:] = -1                              # padding
        z = rng.normal(size=(batch, c)).astype(np.float32) * 3
        out.append((seed, "train", "presentation", epoch, ids, z, labels[np.maximum(ids, 0)],
                    mask))
      for start in range(0, n_test, 10):
        ids = np.arange(start, min(start + 10, n_test))
        out.append((seed, "test", "evaluation", epoch, ids,
                    rng.normal(size=(len(ids), c)).astype(np.float32), test_labels[ids],
                    np.ones(len(ids), bool)))
  return out


@pytest.mark.parametrize("float16,ranks", [(False, 1), (True, 2)])
def test_replayed_logs_equal_the_kernels_fed_directly(tmp_path, float16, ranks):
  rng = np.random.default_rng(7)
  batches = _batches(rng)
  want = _log_and_track(tmp_path, batches, num_examples={"train": 40, "test": 24},
                        num_classes=5, float16=float16, ranks=ranks)
  done = replay.replay(logs.read(tmp_path))
  assert done.seeds == [0, 1] and done.tables["eval_train"] == []
  for (seed, table), expected in want.items():
    _assert_tables_equal(done.tables[table][seed], expected)
    assert int(done.tables[table][seed]["dropped"]) == int(expected["dropped"]) > 0 or \
        table == "test"
  assert [r["epoch"] for r in done.records] == [1, 2, 3]
  assert set(done.records[0]) >= {"train_loss", "train_accuracy", "test_loss", "test_accuracy",
                                  "train_loss_per_seed"}


def _mnist_subset(n_train, n_test):
  def images(name, n):
    with gzip.open(MNIST / name) as f:
      return np.frombuffer(f.read(), np.uint8, offset=16)[:n * 784].reshape(n, 28, 28, 1)

  def labels(name, n):
    with gzip.open(MNIST / name) as f:
      return np.frombuffer(f.read(), np.uint8, offset=8)[:n].astype(np.int64)

  return (images("train-images-idx3-ubyte.gz", n_train), labels("train-labels-idx1-ubyte.gz",
                                                                 n_train),
          images("t10k-images-idx3-ubyte.gz", n_test), labels("t10k-labels-idx1-ubyte.gz", n_test))


def _torch():
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    reason = ("PyTorch is not installed (pip install torch --index-url "
              "https://download.pytorch.org/whl/cpu); CI's lower-py3.11 job installs it")
    if os.environ.get("REGJAX_REQUIRE_TORCH") == "1":
      pytest.fail(reason)
    pytest.skip(reason)
  return torch


def test_pytorch_loop_logs_scores_and_reports(tmp_path, capsys):
  torch = _torch()
  if not (MNIST / "train-images-idx3-ubyte.gz").is_file():
    pytest.skip(f"no MNIST files in {MNIST}")
  x, y, x_test, y_test = _mnist_subset(512, 200)
  np.savez(tmp_path / "examples.npz", x_train=x.astype(np.float32) / 255.0,
           x_test=x_test.astype(np.float32) / 255.0)
  xt = torch.tensor(x, dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
  xt_test = torch.tensor(x_test, dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
  yt, yt_test = torch.tensor(y), torch.tensor(y_test)
  log_dir, direct = tmp_path / "logs", {}
  trackers = {"train": metrics.Tracker(512), "test": metrics.Tracker(200)}
  for seed in (0, 1):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, stride=2), torch.nn.ReLU(),
                                torch.nn.Dropout(0.1), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 13 * 13, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    state = {s: t.init() for s, t in trackers.items()}
    generator = np.random.default_rng(seed)
    with logs.Logger(log_dir, num_examples={"train": 512, "test": 200}, num_classes=10,
                     float16=seed == 1) as logger:
      for epoch in range(3):
        model.train()
        order = generator.permutation(512)
        for start in range(0, 512, 64):
          ids = order[start:start + 64].copy()
          ids[5] = ids[4]                                   # an id twice in one batch
          ids = np.concatenate([ids, [-1, -1]])             # padding rows
          mask = ids >= 0
          rows = torch.tensor(np.maximum(ids, 0))
          logits = model(xt[rows])                          # the train-mode forward of the step
          loss = torch.nn.functional.cross_entropy(logits[torch.tensor(mask)],
                                                   yt[rows][torch.tensor(mask)])
          logger.log(ids, logits, yt[rows], epoch=epoch, seed=seed, mask=mask)  # before step()
          fed = logits.detach().numpy()
          if seed == 1:
            fed = fed.astype(np.float16).astype(np.float32)
          state["train"] = _jitted_update(trackers["train"])(state["train"], ids, fed,
                                                             y[np.maximum(ids, 0)], mask)
          optimizer.zero_grad()
          loss.backward()
          optimizer.step()
        model.eval()
        with torch.no_grad():
          for start in range(0, 200, 100):
            ids = np.arange(start, start + 100)
            logits = model(xt_test[ids])
            logger.log(ids, logits, yt_test[ids], epoch=epoch, seed=seed, split="test",
                       stream="evaluation")
            fed = logits.numpy()
            if seed == 1:
              fed = fed.astype(np.float16).astype(np.float32)
            state["test"] = _jitted_update(trackers["test"])(state["test"], ids, fed,
                                                            y_test[ids])
    for split, tracker in trackers.items():
      direct[(seed, split)] = jax.device_get(tracker.summarize(state[split]))

  run = tmp_path / "run"
  from regularity_jax import score_logs  # pylint: disable=import-outside-toplevel
  score_logs.main([f"--logs={log_dir}", f"--workdir={run}", "--name=mnist512",
                   "--model=torch_cnn", "--k=4", f"--examples={tmp_path / 'examples.npz'}"])
  assert capsys.readouterr().out.strip().endswith(f"run directory: {run}")
  scores = scores_file.load(run / "scores.npz")
  keys = metrics.Tracker(1).summary_keys
  for seed in (0, 1):
    for split in ("train", "test"):
      _assert_tables_equal({k: scores[f"{split}/seed{seed}/{k}"] for k in keys},
                           direct[(seed, split)], keys)
  combined = metrics.seeds.combine({k: np.stack([direct[(s, "train")][k] for s in (0, 1)])
                                    for k in keys})
  _assert_tables_equal({k: scores[f"train/{k}"] for k in keys}, combined, keys)
  assert scores.provenance["seeds"] == [0, 1]
  assert scores.provenance["logs"]["rows"] == 2 * 3 * (512 + 200)  # padding is not written
  records = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
  assert [r["epoch"] for r in records] == [1, 2, 3] and records[-1]["test_accuracy"] > 0.6
  assert (run / "report.html").stat().st_size > 50_000

def test_score_logs_refuses_an_existing_workdir_in_one_line(tmp_path, capsys):
  from regularity_jax import score_logs  # pylint: disable=import-outside-toplevel
  with logs.Logger(tmp_path / "logs", num_examples=4, num_classes=2) as logger:
    logger.log([0, 1], np.zeros((2, 2)), [0, 1], epoch=0)
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "mine.txt").write_text("kept")
  with pytest.raises(SystemExit) as e:
    score_logs.main([f"--logs={tmp_path / 'logs'}", f"--workdir={tmp_path / 'run'}"])
  err = capsys.readouterr().err
  assert e.value.code == 2 and err.count("\n") == 1
  assert "already exists; nothing was changed" in err
  assert [p.name for p in (tmp_path / "run").iterdir()] == ["mine.txt"]


def _doc_blocks(language):
  text = (REPO / "docs" / "any_loop.md").read_text()
  return [b.split("\n", 1)[1] for b in text.split("```")[1::2] if b.startswith(language + "\n")]


def test_docs_examples_run_as_written(tmp_path, capsys):
  """docs/any_loop.md: the JAX loop with the Recorder, the PyTorch loop with the Logger (when
  PyTorch is installed) and the score_logs command, with /tmp/ moved under tmp_path."""
  from regularity_jax import score_logs  # pylint: disable=import-outside-toplevel
  jax_loop, torch_loop = _doc_blocks("python")
  (command,) = _doc_blocks("bash")[:1]
  here = lambda text: text.replace("/tmp/", f"{tmp_path}/")
  exec(compile(here(jax_loop), "docs/any_loop.md (JAX)", "exec"), {})  # pylint: disable=exec-used
  assert capsys.readouterr().out.strip() == f"{tmp_path}/any_loop_jax/report.html"
  assert scores_file.load(tmp_path / "any_loop_jax" / "scores.npz")["train/aum"].shape == (256,)
  _torch()  # skips (or fails where CI requires PyTorch) without it
  exec(compile(here(torch_loop), "docs/any_loop.md (PyTorch)", "exec"), {})  # pylint: disable=exec-used
  flags = dict(arg.split("=", 1) for arg in here(command).split() if arg.startswith("--"))
  assert command.startswith("python -m regularity_jax.score_logs ")
  run = score_logs.score_logs(flags["--logs"], flags["--workdir"])
  scores = scores_file.load(run / "scores.npz")
  assert scores["train/forgetting_events"].shape == (256,)
  assert scores.provenance["logs"]["rows"] == 5 * 256


USER_STATISTIC = '''
"""A user statistic with the kernel interface: the running mean of the softmax entropy."""
from typing import NamedTuple
import jax
import jax.numpy as jnp
from regularity_jax.metrics import indexing


class State(NamedTuple):
  total: jnp.ndarray
  count: jnp.ndarray
  dropped: jnp.ndarray


def init(num_examples):
  return State(jnp.zeros(num_examples), jnp.zeros(num_examples, jnp.int32), indexing.no_drops())


def update(state, ids, logits, labels, mask=None):
  rows = indexing.select_rows(ids, mask, state.total.shape[0])
  p = jax.nn.softmax(logits)
  entropy = -jnp.sum(p * jnp.log(p + 1e-12), axis=-1)
  return State(indexing.scatter_add(state.total, rows.ids, entropy),
               indexing.scatter_add(state.count, rows.ids, jnp.ones_like(rows.ids)),
               state.dropped + rows.dropped)


def summarize(state):
  return {"mean_entropy": indexing.safe_divide(state.total, state.count),
          "dropped": state.dropped}
'''


def test_a_user_statistic_by_import_path_lands_in_scores(tmp_path, monkeypatch):
  from regularity_jax import score_logs  # pylint: disable=import-outside-toplevel
  (tmp_path / "my_stats.py").write_text(USER_STATISTIC)
  monkeypatch.syspath_prepend(str(tmp_path))
  rng = np.random.default_rng(5)
  batches = _batches(rng, epochs=2)
  _log_and_track(tmp_path / "logs", batches, num_examples={"train": 40, "test": 24},
                 num_classes=5)
  run = score_logs.score_logs(tmp_path / "logs", tmp_path / "run", statistics=["my_stats"],
                              kernels=["forgetting"], report=False)
  scores = scores_file.load(run / "scores.npz")
  import my_stats  # pylint: disable=import-outside-toplevel,import-error
  for seed in (0, 1):
    state = my_stats.init(40)
    for s, split, _, _, ids, z, y, mask in batches:
      if s == seed and split == "train":
        state = my_stats.update(state, ids, z, y, mask)
    want = np.asarray(my_stats.summarize(state)["mean_entropy"])
    np.testing.assert_allclose(scores[f"train/seed{seed}/mean_entropy"], want, rtol=2e-6)
  assert "train/aum" not in scores and "train/forgetting_events" in scores
  with pytest.raises(logs.LogError, match="cannot be imported") as e:
    score_logs.score_logs(tmp_path / "logs", tmp_path / "run2", statistics=["no_such:thing"])
  assert "\n" not in str(e.value)
