"""Your model through the engine (docs/your_model.md): the contract, the door, turn-over sites,
the margin layout, provenance, and one-line refusals before anything is written."""

import hashlib
import inspect
import json
import linecache
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regularity_jax import models
from regularity_jax import runs
from regularity_jax.models import norms
from regularity_jax.models import turnover
from regularity_jax.training import ConfigError
from regularity_jax.training import parts
from regularity_jax.training import train_and_evaluate
from tests import engine_fixtures

REPO = pathlib.Path(__file__).resolve().parents[1]
RUN_05BB32C = REPO / "tests" / "data" / "run_05bb32c"  # its README.md says how it was made
FIXTURE_JAX = "0.10.2"  # the jax that made it (CI's lower-bounds job)

# An NNX model that is not in the package: BatchNorm, one turn-over site, the default normalizer.
MY_MODEL = """
from flax import nnx
import jax.numpy as jnp
from regularity_jax.models import TurnOverSite


class Net(nnx.Module):

  def __init__(self, *, num_classes, example_shape, rngs):
    self.conv = nnx.Conv(example_shape[-1], 8, kernel_size=(3, 3), use_bias=False, rngs=rngs)
    self.bn = nnx.BatchNorm(8, rngs=rngs)
    self.site = TurnOverSite("features")
    self.head = nnx.Linear(8, num_classes, rngs=rngs)

  def __call__(self, x):
    x = nnx.relu(self.bn(self.conv(x)))
    return self.head(self.site(jnp.mean(x, axis=(1, 2))))
"""

# The Flax NNX MNIST tutorial's CNN (docs_nnx/mnist_tutorial.md), unchanged.
TUTORIAL_CNN = """
from flax import nnx  # The Flax NNX API.
from functools import partial

class CNN(nnx.Module):
  \"\"\"A simple CNN model.\"\"\"

  def __init__(self, *, rngs: nnx.Rngs):
    self.conv1 = nnx.Conv(1, 32, kernel_size=(3, 3), rngs=rngs)
    self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), rngs=rngs)
    self.avg_pool = partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
    self.linear1 = nnx.Linear(3136, 256, rngs=rngs)
    self.linear2 = nnx.Linear(256, 10, rngs=rngs)

  def __call__(self, x):
    x = self.avg_pool(nnx.relu(self.conv1(x)))
    x = self.avg_pool(nnx.relu(self.conv2(x)))
    x = x.reshape(x.shape[0], -1)  # flatten
    x = nnx.relu(self.linear1(x))
    x = self.linear2(x)
    return x
"""

# Dropout drawn from the model's own nnx.Rngs (reseeded from the step key by the engine).
DROP_MODEL = """
import math
from flax import nnx


class DropNet(nnx.Module):

  def __init__(self, *, num_classes, example_shape, rngs):
    self.hidden = nnx.Linear(math.prod(example_shape), 32, rngs=rngs)
    self.dropout = nnx.Dropout(0.5, rngs=rngs)
    self.head = nnx.Linear(32, num_classes, rngs=rngs)

  def __call__(self, x):
    x = nnx.relu(self.hidden(x.reshape(x.shape[0], -1)))
    return self.head(self.dropout(x))
"""

# Models that do not fit, one reason each.
MISFITS = """
from flax import linen as nn
from flax import nnx
import jax.numpy as jnp
from regularity_jax.models import TurnOverSite


class IgnoresMasks(nnx.Module):
  def __init__(self, *, num_classes, example_shape, rngs):
    self.site = TurnOverSite("features")  # placed, never called
    self.head = nnx.Linear(6 * 6, num_classes, rngs=rngs)

  def __call__(self, x):
    return self.head(x.reshape(x.shape[0], -1))


class NoSite(nnx.Module):
  def __init__(self, *, num_classes, rngs):
    self.head = nnx.Linear(6 * 6, num_classes, rngs=rngs)

  def __call__(self, x):
    return self.head(x.reshape(x.shape[0], -1))


class NeedsWidth(NoSite):
  def __init__(self, width, *, num_classes, rngs):
    super().__init__(num_classes=num_classes, rngs=rngs)


class NeedsMask(NoSite):
  def __call__(self, x, mask):
    return super().__call__(x) * mask


class TwoHeads(nnx.Module):
  def __init__(self, *, num_classes, rngs):
    self.a = nnx.Linear(6 * 6, num_classes, rngs=rngs)
    self.b = nnx.Linear(num_classes, num_classes, rngs=rngs)

  def __call__(self, x):
    return self.b(self.a(x.reshape(x.shape[0], -1)))


class Linen(nn.Module):
  @nn.compact
  def __call__(self, x):
    return nn.Dense(4)(x.reshape(x.shape[0], -1))
"""


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
  return engine_fixtures.write_tiny_npz(tmp_path_factory.mktemp("data")).parent


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
  """A folder outside the repository with the user's files."""
  return engine_fixtures.user_folder(tmp_path_factory, my_model=MY_MODEL, misfits=MISFITS,
                                    tutorial_cnn=TUTORIAL_CNN)


def user_config(data_dir, model, **overrides):
  """The tiny fixture's config with a user model (and none of the built-in mlp's kwargs)."""
  config = engine_fixtures.tiny_config(data_dir, model=model, **overrides)
  del config.model_kwargs["hidden"]
  return config


def refused(config, workdir, match):
  """train_and_evaluate ends in one line matching `match`, with nothing written."""
  with pytest.raises((ConfigError, runs.RunDirectoryError), match=match) as error:
    train_and_evaluate(config, workdir)
  assert "\n" not in str(error.value)
  return error


class TestRefusals:
  """Each misfit ends in one line naming the contract, before the workdir exists."""

  @pytest.mark.parametrize("attr, overrides, match", [
      ("IgnoresMasks", {"turnover.enabled": True}, "same logits with its own and its flipped"),
      ("NoSite", {"turnover.enabled": True}, "has no turn-over site.*TurnOverSite"),
      ("NeedsWidth", {}, "constructor needs 'width'.*docs/your_model.md"),
      ("NeedsMask", {}, "__call__ needs 'mask'.*docs/your_model.md"),
      ("Linen", {}, "Linen module.*nnx.bridge.ToNNX"),
      ("NoSite", {"dtype": "bfloat16"}, "takes no `dtype`.*dtype=float32"),
      ("TwoHeads", {}, "2 dense kernels.*final_layer"),
      ("Missing", {}, "has no 'Missing'"),
  ])
  def test_one_line_nothing_written(self, tiny_data, user_dir, tmp_path, attr, overrides, match):
    config = user_config(tiny_data, f"{user_dir}/misfits.py:{attr}", num_epochs=1,
                         **overrides)
    refused(config, tmp_path / "run", match)
    assert not (tmp_path / "run").exists()

  def test_relative_file_path_names_where_it_looked(self, tiny_data, tmp_path):
    config = user_config(tiny_data, "nowhere/my_model.py:Net")
    refused(config, tmp_path / "run", "looked for .*nowhere/my_model.py.*current directory")
    assert not (tmp_path / "run").exists()


class TestBuiltinsThroughTheSameDoor:

  @pytest.mark.parametrize("name, shape, kwargs", [
      ("mlp", (5,), {}), ("toneva_cnn", (28, 28, 1), {}), ("small_cnn", (16, 16, 3), {}),
      pytest.param("resnet18", (8, 8, 3), {"width": 4}, marks=pytest.mark.slow)])
  def test_derived_layout_is_todays_table(self, name, shape, kwargs):
    model = models.create_model(name, num_classes=10, example_shape=shape, rngs=nnx.Rngs(0),
                                **kwargs)
    _, params, model_state = models.split(model)
    derived = norms.derive_layout(model, params, 10, declared=False)  # from the layers alone
    assert derived[:2] == norms._LAYOUTS[name][:2]  # pylint: disable=protected-access
    # Folding by the derived pairs gives today's normalizer, bit for bit.
    for kind in ("frobenius_product", "last_layer"):
      today = norms.log_network_norm(params, model_state, kind=kind, model=name)
      np.testing.assert_array_equal(
          norms.log_network_norm(params, model_state, kind=kind, model=derived), today)

  @pytest.mark.parametrize("name, shape", [("mlp", (5,)), ("small_cnn", (8, 8, 3))])
  def test_turnover_masks_are_todays(self, name, shape):
    """Today's site code (index fold_in, [B, D] or [B, 1, 1, C] masks) as the reference."""
    model = models.create_model(name, num_classes=3, example_shape=shape, rngs=nnx.Rngs(0),
                                turnover_sites=("all",))
    x = jax.random.normal(jax.random.key(1), (4, 6, 6, 3) if len(shape) == 3 else (4, 7))
    key = jax.random.key_data(jax.random.key(2))
    ctx = turnover.TurnOver(key, jnp.array([5, 1, 5, 9]), "own")
    for site in range(len(model.turnover_available)):
      m = turnover.example_masks(key, site, ctx.ids, (x.shape[-1],), 0.5)
      m = m[:, None, None, :] if x.ndim == 4 else m
      today = jnp.where(m, x * 2.0, jnp.zeros_like(x)).astype(x.dtype)
      np.testing.assert_array_equal(turnover.apply_site(x, ctx, site, 0.5), today)
    assert models.split(model)[0].style == models.contract.CallStyle(
        train=True, key=True, rngs=False, turnover=True)


class TestTurnOverSites:

  def test_site_key_is_a_stable_hash_of_its_name(self):
    # FNV-1a 32 (http://www.isthe.com/chongo/tech/comp/fnv/), top bit cleared; "" is its basis.
    assert turnover.site_index("") == 0x811C9DC5 & 0x7FFFFFFF
    assert turnover.site_index("a") == 0xE40C292C & 0x7FFFFFFF

  def test_masks_follow_the_name_not_the_position(self):

    class Two(nnx.Module):
      def __init__(self, names):
        self.sites = nnx.List([turnover.TurnOverSite(n) for n in names])

      def __call__(self, x):
        return [site(x) for site in self.sites]

    x = jnp.ones((3, 16))
    ctx = turnover.TurnOver(jax.random.key_data(jax.random.key(0)), jnp.arange(3), "own")
    outs = {}
    for names in (("a", "b"), ("b", "a"), ("c", "a", "b")):
      model = Two(names)
      turnover.configure_sites(model, ("all",), 0.5)
      with turnover.active(ctx):
        outs[names] = dict(zip(names, model(x)))
    for name in ("a", "b"):
      np.testing.assert_array_equal(outs[("a", "b")][name], outs[("b", "a")][name])
      np.testing.assert_array_equal(outs[("a", "b")][name], outs[("c", "a", "b")][name])
    assert not np.array_equal(outs[("a", "b")]["a"], outs[("a", "b")]["b"])

  def test_without_context_or_switch_a_site_is_identity(self):
    site = turnover.TurnOverSite("x")
    x = jnp.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(site(x), x)
    turnover.configure_sites(site, ("all",), 0.5)
    np.testing.assert_array_equal(site(x), x)  # no active context: the full network
    with pytest.raises(ValueError, match="unknown turn-over site"):
      turnover.configure_sites(site, ("y",), 0.5)


class TestOwnRngStreams:

  class Drop(nnx.Module):
    def __init__(self, *, rngs):
      self.linear = nnx.Linear(8, 4, rngs=rngs)
      self.dropout = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x):
      return self.dropout(self.linear(x))

  def test_reseeded_from_the_step_key_and_kept_out_of_the_state(self):
    graphdef, params, model_state = models.split(self.Drop(rngs=nnx.Rngs(0)))
    assert model_state == {} and graphdef.rng_streams
    x = jnp.ones((2, 8))
    step = jax.jit(models.apply, static_argnames="train")
    a = step(graphdef, params, model_state, x, train=True, key=jax.random.key(1))[0]
    b = models.apply(graphdef, params, model_state, x, train=True, key=jax.random.key(1))[0]
    c = step(graphdef, params, model_state, x, train=True, key=jax.random.key(2))[0]
    np.testing.assert_array_equal(a, b)  # same key, same masks: jitted or not, any call
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(  # after other keys: the key alone decides
        step(graphdef, params, model_state, x, train=True, key=jax.random.key(1))[0], a)
    dropped = np.asarray(a) == 0
    assert 0 < dropped.mean() < 1 and not np.array_equal(dropped, np.asarray(c) == 0)
    full = models.apply(graphdef, params, model_state, x, train=False)[0]
    assert np.all(np.asarray(full) != 0)  # eval(): no dropout


def write_config(folder, data_dir, model, **overrides):
  """An experiment config file in `folder` (outside the repository)."""
  path = folder / f"config_{len(list(folder.glob('config_*.py')))}.py"
  path.write_text(textwrap.dedent(f"""
      from tests import engine_fixtures

      def get_config():
        config = engine_fixtures.tiny_config({str(data_dir)!r}, model={model!r},
                                             **{overrides!r})
        del config.model_kwargs["hidden"]
        return config
      """))
  return path


# experiments.main, killed (deterministically, no timing) with SIGKILL after 3 of the 6 steps of
# epoch 2, once the step of row 3 is dispatched.
KILLED_MAIN = """
import os, signal, sys
from absl import app
from experiments import cli, main
from regularity_jax.training import inputs
original, calls = inputs.DeviceInput.train_rows, []

def killed_in_epoch_2(self, setup, plan, num_rows):
  calls.append(1)
  for r, row in enumerate(original(self, setup, plan, num_rows)):
    if len(calls) == 2 and r == 3:
      os.kill(os.getpid(), signal.SIGKILL)
    yield row

inputs.DeviceInput.train_rows = killed_in_epoch_2
sys.argv[0] = "experiments.main"
app.run(main.main, flags_parser=cli.parse_flags)
"""


def run_main(config_path, workdir, pythonpath=(), killed=False):
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *map(str, pythonpath)]))
  program = ["-c", KILLED_MAIN] if killed else ["-m", "experiments.main"]
  return subprocess.run([sys.executable, *program, f"--config={config_path}",
                         f"--workdir={workdir}"], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["file", "import"])
def test_my_model_through_experiments_main(tiny_data, user_dir, tmp_path, how):
  """Forgetting, AUM, turn-over, margins and the report for a model outside the package."""
  model = "my_model.py:Net" if how == "file" else "my_model:Net"  # file: from the config's folder
  config = write_config(user_dir, tiny_data, model, **{
      "num_epochs": 2, "turnover.enabled": True, "report": True})
  done = run_main(config, tmp_path / "run", pythonpath=[user_dir] if how == "import" else [])
  assert done.returncode == 0, done.stderr[-2000:]
  run = tmp_path / "run"
  scores = np.load(run / "scores.npz")
  assert {"train/forgetting_events", "train/aum", "train/normalized_margin",
          "test/normalized_margin", "train/memorization_loss"} <= set(scores.files)
  assert np.any(scores["train/memorization_loss"] != 0)
  assert np.all(np.isfinite(scores["train/normalized_margin"]))
  assert np.all(np.isfinite(scores["train/aum"])) and np.any(scores["train/aum"] != 0)
  assert scores["train/forgetting_events"].shape == (96,)
  assert (run / "report.html").is_file()
  saved = json.loads((run / "config.json").read_text())
  assert saved["model"] == model
  source = user_dir / "my_model.py"
  assert saved["model_source"]["resolved"] == (f"{source.resolve()}:Net" if how == "file"
                                               else "my_model:Net")
  assert saved["model_source"]["sha256"] == __import__("hashlib").sha256(
      source.read_bytes()).hexdigest()


@pytest.mark.slow
def test_my_model_sigkill_in_epoch_2_then_rerun_equals_uninterrupted(tiny_data, user_dir,
                                                                      tmp_path):
  """my_model.py by file path from the config's folder, turn-over on, the report: killed in the
  middle of epoch 2 of 3, the same command resumes from checkpoint 1 and ends with the
  uninterrupted run's scores.npz bit for bit."""
  config = write_config(user_dir, tiny_data, "my_model.py:Net", **{
      "num_epochs": 3, "checkpoint_every": 1, "turnover.enabled": True, "report": True})
  reference = run_main(config, tmp_path / "reference")
  assert reference.returncode == 0, reference.stderr[-2000:]
  workdir = tmp_path / "killed"
  proc = run_main(config, workdir, killed=True)
  assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == ["1"]
  assert not (workdir / "scores.npz").exists()
  resumed = run_main(config, workdir)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
  with np.load(tmp_path / "reference" / "scores.npz") as a, np.load(workdir / "scores.npz") as b:
    assert a.files == b.files
    for key in a.files:
      assert a[key].dtype == b[key].dtype and a[key].tobytes() == b[key].tobytes(), key
    assert np.any(b["train/memorization_loss"] != 0)
  assert (workdir / "report.html").is_file()


@pytest.mark.slow
def test_own_dropout_stop_and_resume_equals_uninterrupted(tiny_data, tmp_path):
  """nnx.Dropout from the model's own Rngs: a run stopped after epoch 1 (max_wall_time_s) and
  rerun ends with the uninterrupted run's scores bit for bit (1 vs 4 devices:
  tests/multidevice_cases.py own_dropout_four_devices_match_one)."""
  (tmp_path / "drop.py").write_text(DROP_MODEL)

  def config(**overrides):
    return user_config(tiny_data, f"{tmp_path}/drop.py:DropNet", num_epochs=3,
                       **overrides)

  full = train_and_evaluate(config(), tmp_path / "full")
  stopped = train_and_evaluate(config(max_wall_time_s=1e-3), tmp_path / "resumed")
  assert [r["epoch"] for r in stopped.metrics] == [1]
  resumed = train_and_evaluate(config(), tmp_path / "resumed")
  assert [r["epoch"] for r in resumed.metrics] == [1, 2, 3]
  assert set(full.scores) == set(resumed.scores)
  for key, value in full.scores.items():
    assert np.asarray(value).tobytes() == np.asarray(resumed.scores[key]).tobytes(), key
  for a, b in zip(full.metrics, resumed.metrics):
    assert a["train_loss"] == b["train_loss"], a["epoch"]


# A notebook cell (IPython keeps a cell's code in linecache under a name that is no file).
CELL = """
import math
from flax import nnx
from regularity_jax.models import TurnOverSite

class Base(nnx.Module):
  final_layer = "head"

class CellNet(Base):
  def __init__(self, *, num_classes, example_shape, rngs):
    self.hidden = nnx.Linear(math.prod(example_shape), 16, rngs=rngs)
    self.site = TurnOverSite("hidden")
    self.head = nnx.Linear(16, num_classes, rngs=rngs)

  def __call__(self, x):
    return self.head(self.site(nnx.relu(self.hidden(x.reshape(x.shape[0], -1)))))
"""


def run_cell(source, name="/tmp/ipykernel_0/cell.py", cached=True):
  """The namespace after running `source` as IPython runs a cell: module __main__, the code in
  linecache under `name` (not cached: a source no one kept)."""
  if cached:
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
  namespace = {"__name__": "__main__"}
  exec(compile(source, name, "exec"), namespace)  # pylint: disable=exec-used
  return namespace


class TestSessionClass:
  """A class defined in a notebook cell or a session: named 'module:QualifiedName',
  identified by the sha256 of its class source and its bases' from the same module."""

  def test_named_and_hashed_by_its_class_source(self):
    cls = run_cell(CELL, "/tmp/ipykernel_0/a.py")["CellNet"]
    part = parts.resolve_object(cls)
    assert (part.spec, part.resolved, part.cls) == ("__main__:CellNet", "__main__:CellNet", cls)
    # The reference: the two class statements cut from the cell by hand, the class first.
    base = CELL[CELL.index("class Base"):CELL.index("class CellNet")].rstrip("\n") + "\n"
    own = CELL[CELL.index("class CellNet"):]
    assert part.sha256 == hashlib.sha256((own + base).encode()).hexdigest()
    # Another cell with the same classes but other code around them: the same sha256.
    again = run_cell("x = 1\n" + CELL + "\ny = 2\n", "/tmp/ipykernel_0/b.py")["CellNet"]
    assert parts.resolve_object(again).sha256 == part.sha256
    changed = run_cell(CELL.replace("nnx.relu", "nnx.gelu"), "/tmp/ipykernel_0/c.py")["CellNet"]
    assert parts.resolve_object(changed).sha256 != part.sha256

  def test_a_base_without_methods_in_another_cell(self):
    base_cell = CELL[:CELL.index("class CellNet")]
    namespace = run_cell(base_cell, "/tmp/ipykernel_0/base.py")
    own_cell = CELL[CELL.index("class CellNet"):]
    linecache.cache["/tmp/ipykernel_0/own.py"] = (0, None, own_cell.splitlines(True),
                                                  "/tmp/ipykernel_0/own.py")
    exec(compile(own_cell, "/tmp/ipykernel_0/own.py", "exec"), namespace)  # pylint: disable=exec-used
    alone = parts.resolve_object(namespace["CellNet"])
    together = parts.resolve_object(run_cell(CELL, "/tmp/ipykernel_0/f.py")["CellNet"])
    assert alone.sha256 == together.sha256

  def test_a_file_class_passed_as_object_is_its_file(self, user_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(user_dir))
    import my_model  # pylint: disable=g-import-not-at-top,import-outside-toplevel
    part = parts.resolve_object(my_model.Net)
    assert part.resolved == "my_model:Net" == parts.resolve_model("my_model:Net").resolved
    assert part.sha256 == hashlib.sha256((user_dir / "my_model.py").read_bytes()).hexdigest()

  def test_builtin_class_passed_as_object_is_the_builtin(self):
    assert parts.resolve_object(models.registry.constructor("mlp")).builtin

  def test_no_source_refused_in_one_line_nothing_written(self, tiny_data, tmp_path):
    cls = run_cell(CELL, "<lost>", cached=False)["CellNet"]
    with pytest.raises(OSError):
      inspect.getsource(cls)
    config = user_config(tiny_data, "mlp")
    with pytest.raises(ConfigError, match="source of 'CellNet' cannot be found.*file.py:Class") \
        as error:
      train_and_evaluate(config, tmp_path / "run", model=cls)
    assert "\n" not in str(error.value) and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cell_class_trains_records_and_changed_code_is_refused_or_allowed(tiny_data, tmp_path):
  """A cell's class through train_and_evaluate(model=...): config.json names it and its
  sha256; the class changed in a later cell is refused in one line with nothing changed, and
  resumes with allow_changed_model_code=True, recorded in the run directory."""
  cls = run_cell(CELL, "/tmp/ipykernel_0/d.py")["CellNet"]
  workdir = tmp_path / "run"
  config = user_config(tiny_data, "mlp", num_epochs=2, max_wall_time_s=1e-3,
                       **{"turnover.enabled": True})
  stopped = train_and_evaluate(config, workdir, model=cls)  # after epoch 1 (max_wall_time_s)
  assert stopped.final["epoch"] == 1 and np.any(stopped.scores["train/memorization_loss"] != 0)
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["model"] == "__main__:CellNet"
  assert saved["model_source"] == parts.resolve_object(cls).record()
  assert config.model == "mlp"  # the caller's config is left as it was

  # Other code, the same parameters (a checkpoint of the old code restores into it).
  changed = run_cell(CELL.replace("nnx.relu", "nnx.gelu"), "/tmp/ipykernel_0/e.py")["CellNet"]
  config.max_wall_time_s = 0.0
  before = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
  with pytest.raises(runs.RunDirectoryError, match=(
      "trained with model code __main__:CellNet of sha256.*allow_changed_model_code=True")) as e:
    train_and_evaluate(config, workdir, model=changed)
  assert "\n" not in str(e.value)
  assert {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()} == before
  config.allow_changed_model_code = True
  config.learning_rate *= 2
  with pytest.raises(runs.RunDirectoryError, match="different config.*learning_rate"):
    train_and_evaluate(config, workdir, model=changed)  # only the code may differ
  config.learning_rate /= 2
  resumed = train_and_evaluate(config, workdir, model=changed)
  assert [r["epoch"] for r in resumed.metrics] == [1, 2]
  (note,) = [json.loads(l) for l in (workdir / "model_code_changes.jsonl").read_text().splitlines()]
  assert note["old"] == saved["model_source"]
  assert note["new"] == parts.resolve_object(changed).record() != note["old"]
  assert note["last_epoch_recorded"] == 1
  assert json.loads((workdir / "config.json").read_text())["model_source"] == note["new"]


@pytest.mark.slow
def test_tutorial_cnn_unchanged_trains(tmp_path, user_dir):
  data = engine_fixtures.write_tiny_npz(tmp_path / "data", n_train=40, n_test=20,
                                        num_classes=10, shape=(28, 28, 1)).parent
  config = user_config(data, f"{user_dir}/tutorial_cnn.py:CNN", num_epochs=1, batch_size=20,
                       eval_batch_size=20)
  result = train_and_evaluate(config, tmp_path / "run")
  assert np.isfinite(result.final["train_loss"])
  assert np.isfinite(result.final["log_network_norm"])
  assert result.scores["train/forgetting_events"].shape == (40,)


@pytest.mark.slow
def test_changed_user_code_on_resume_is_refused(tiny_data, tmp_path):
  folder = tmp_path / "user"
  folder.mkdir()
  (folder / "net.py").write_text(MY_MODEL)
  config = user_config(tiny_data, f"{folder}/net.py:Net", num_epochs=1)
  train_and_evaluate(config, tmp_path / "run")
  before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
  (folder / "net.py").write_text(MY_MODEL + "\n# v2: the same model, other code\n")
  config = user_config(tiny_data, f"{folder}/net.py:Net", num_epochs=2)
  refused(config, tmp_path / "run", "trained with model code .*net.py:Net of sha256.*"
          "allow_changed_model_code=True")
  after = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
  assert after == before
  # Overridden explicitly: the run is finished, so nothing trains with the new code and nothing
  # is written (a run that resumes records the change: test_cell_class_trains_...).
  config = user_config(tiny_data, f"{folder}/net.py:Net", num_epochs=1,
                       allow_changed_model_code=True)
  train_and_evaluate(config, tmp_path / "run")
  assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()} == before
  assert not (tmp_path / "run" / "model_code_changes.jsonl").exists()


def assert_same_bits(a, b):
  """Two scores tables: the same names, and each column's dtype, shape and bytes."""
  assert sorted(a) == sorted(b)
  for key in a:
    x, y = np.asarray(a[key]), np.asarray(b[key])
    assert (x.dtype, x.shape, x.tobytes()) == (y.dtype, y.shape, y.tobytes()), key


def assert_same_up_to_rounding(a, b):
  """Two scores tables made on different machines: the same names, dtypes and shapes; integer
  and boolean columns identical, floats to float32 rounding. XLA:CPU compiles for the host's
  vector instructions (AVX2, AVX-512), so the same jax gives float sums whose last bits differ
  between machines (seen: 1-2 ulp on a machine with AVX2 only). Bit identity between versions
  on one machine is the no-change script's (benchmarks/no_change.py)."""
  assert sorted(a) == sorted(b)
  for key in a:
    x, y = np.asarray(a[key]), np.asarray(b[key])
    assert (x.dtype, x.shape) == (y.dtype, y.shape), key
    if np.issubdtype(x.dtype, np.floating):
      np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6, err_msg=key)
    else:
      np.testing.assert_array_equal(x, y, err_msg=key)


@pytest.mark.slow
def test_a_05bb32c_run_directory_is_refused_naming_the_version_its_scores_still_prune(
    tmp_path, monkeypatch):
  """A run directory of 05bb32c's code, cut where a SIGKILL in epoch 2 leaves it: its config
  still matches (fields added since, at their defaults), but its state lacks issue 30's
  first_forgotten, so it cannot go on bit for bit: refused in one line naming the version, with
  nothing changed. Today's code on the same config gives the 05bb32c run's columns (integers
  exactly, floats to the rounding of another machine),
  and the 05bb32c scores.npz is a pruning.scores_path that prunes as today's file does."""
  monkeypatch.chdir(tmp_path)  # its config.json names data_dir "data"
  engine_fixtures.write_tiny_npz(tmp_path / "data")
  shutil.copytree(RUN_05BB32C / "run", tmp_path / "run")
  files = lambda: {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
  before = files()
  def as_05bb32c(**overrides):  # its tiny fixture named the data "mnist", in data_dir "data"
    config = engine_fixtures.tiny_config("data", **overrides)
    config.dataset, config.data_dir = "mnist", "data"
    return config

  config = as_05bb32c(num_epochs=2, checkpoint_every=1, **{"turnover.enabled": True})
  with pytest.raises(runs.CheckpointFormatError, match=(
      "checkpoints/1 was written by a version of regularity_jax before 8a5a0b2 .*05bb32c.*"
      "resume it with that version .* stays a valid --config.pruning.scores_path")) as error:
    train_and_evaluate(config, tmp_path / "run")
  assert "\n" not in str(error.value)
  assert files() == before

  today = train_and_evaluate(config, tmp_path / "today")
  with np.load(RUN_05BB32C / "uninterrupted_scores.npz") as old, \
      np.load(tmp_path / "today" / "scores.npz") as new:
    old, new = dict(old), dict(new)
  added = {k for k in new if k.endswith("first_forgotten")}  # issue 30's columns
  assert added and set(new) - added == set(old)
  # Values only under the jax that wrote the fixture: XLA's float arithmetic changes between
  # releases (CI's newest job runs another jax); elsewhere names, dtypes and shapes. Floats to
  # rounding: the fixture was made on another machine (assert_same_up_to_rounding).
  same_jax = jax.__version__ == FIXTURE_JAX
  if same_jax:
    assert_same_up_to_rounding({k: v for k, v in old.items() if k != "provenance"},
                               {k: new[k] for k in old if k != "provenance"})
  else:
    assert {k: (v.dtype, v.shape) for k, v in old.items() if k != "provenance"} == {
        k: (new[k].dtype, new[k].shape) for k in old if k != "provenance"}
  provenance = json.loads(str(new["provenance"]))
  assert provenance.pop("permute_pixels") is None  # issue 30's entry, off
  assert provenance.pop("data_identity")["sizes"] == [96, 48]  # issue 33's: train, test
  old_provenance = json.loads(str(old["provenance"]))
  for entry in (provenance, old_provenance):  # where the data was: another folder then
    assert entry.pop("source").endswith("/data/tiny.npz")
  assert provenance == old_provenance
  timing = {"train_time_s", "eval_time_s"}
  old_metrics = [{k: v for k, v in json.loads(line).items() if k not in timing} for line in
                 (RUN_05BB32C / "uninterrupted_metrics.jsonl").read_text().splitlines()]
  today_metrics = [{k: v for k, v in r.items() if k not in timing} for r in today.metrics]
  if same_jax:
    assert [sorted(r) for r in today_metrics] == [sorted(r) for r in old_metrics]
    for r_today, r_old in zip(today_metrics, old_metrics):
      for key, value in r_old.items():
        if isinstance(value, float) or (isinstance(value, list) and value
                                        and isinstance(value[0], float)):
          assert r_today[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
        else:
          assert r_today[key] == value, key
  else:
    assert [sorted(r) for r in today_metrics] == [sorted(r) for r in old_metrics]

  pruned = {}
  for name, path in [("old", RUN_05BB32C / "uninterrupted_scores.npz"),
                     ("today", tmp_path / "today" / "scores.npz")]:
    config = as_05bb32c(num_epochs=1, **{
        "pruning.fraction_kept": 0.5, "pruning.score": "forgetting",
        "pruning.scores_path": str(path)})
    pruned[name] = train_and_evaluate(config, tmp_path / f"pruned_{name}")
  assert pruned["old"].final["train_fraction_used"] == 0.5
  if same_jax:  # both pruned here, on the same examples (forgetting counts are integers)
    assert_same_bits(pruned["old"].scores, pruned["today"].scores)
  else:
    assert pruned["today"].final["train_fraction_used"] == 0.5
