"""Models by name and their functional split/apply view (regularity_jax.models)."""

import ast
import functools
import math
import pathlib

import chex
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regularity_jax import models
from regularity_jax.models import dropout as dropout_lib
from regularity_jax.models import toneva_cnn

# Small configurations of every model. ResNet-18 runs a forward pass in one test only (the
# full-size one); the rest of its code paths (BatchNorm, head dropout, dtype) are small_cnn's.
SMALL = {
    "mlp": dict(example_shape=(40, 1), kwargs=dict(hidden=(16, 8))),
    "toneva_cnn": dict(example_shape=(28, 28, 1), kwargs={}),
    "small_cnn": dict(example_shape=(12, 12, 3), kwargs=dict(widths=(4, 8))),
    "resnet18": dict(example_shape=(8, 8, 3), kwargs=dict(width=4)),
}
NUM_CLASSES = 5
CHEAP = ("mlp", "toneva_cnn", "small_cnn")


def small_model(name, *, seed=0, dtype=jnp.float32, **overrides):
  cfg = SMALL[name]
  kwargs = {**cfg["kwargs"], **overrides}
  return models.create_model(
      name, num_classes=NUM_CLASSES, example_shape=cfg["example_shape"],
      rngs=nnx.Rngs(seed), dtype=dtype, **kwargs)


@pytest.fixture(scope="session")
def cifar_resnet18():
  """The full-size CIFAR ResNet-18, built once (initialization alone takes seconds on CPU)."""
  return models.create_model(
      "resnet18", num_classes=10, example_shape=(32, 32, 3), rngs=nnx.Rngs(0))


def batch(name, size=4, seed=0):
  shape = (size, *SMALL[name]["example_shape"])
  return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def tree_allclose(a, b, **kw):
  chex.assert_trees_all_close(a, b, **kw)


def is_plain_dict_tree(tree):
  """True if every inner node is a plain dict and every leaf a jax.Array."""
  if type(tree) is dict:
    return all(is_plain_dict_tree(v) for v in tree.values())
  return isinstance(tree, jax.Array)


class TestCreateModel:

  @pytest.mark.parametrize("name", CHEAP)
  def test_logits_shape_and_dtype(self, name):
    model = small_model(name)
    logits = model(batch(name))
    chex.assert_shape(logits, (4, NUM_CLASSES))
    chex.assert_type(logits, jnp.float32)
    assert np.isfinite(np.asarray(logits)).all()

  @pytest.mark.parametrize("name", CHEAP)
  def test_bfloat16_compute_gives_float32_logits_and_params(self, name):
    model = small_model(name, dtype=jnp.bfloat16)
    logits = model(batch(name), train=True, key=jax.random.key(0))
    chex.assert_type(logits, jnp.float32)
    _, params, model_state = models.split(model)  # batch stats updated in bf16 compute
    for leaf in jax.tree.leaves((params, model_state)):
      chex.assert_type(leaf, jnp.float32)

  def test_toneva_cnn_param_count(self):
    # Toneva et al.'s MNIST net: conv 5*5*1*10+10, conv 5*5*10*20+20, dense 320*50+50, 50*10+10.
    model = models.create_model(
        "toneva_cnn", num_classes=10, example_shape=(28, 28, 1), rngs=nnx.Rngs(0))
    assert models.count_params(model) == 260 + 5_020 + 16_050 + 510 == 21_840

  def test_kobayashi_bias_free_mlp_param_count(self):
    model = models.create_model(
        "mlp", num_classes=10, example_shape=(28, 28, 1), rngs=nnx.Rngs(0),
        hidden=(768, 768, 768), use_bias=False)
    assert models.count_params(model) == 784 * 768 + 2 * 768 * 768 + 768 * 10

  def test_mlp_flattens_1d_signals(self):
    model = small_model("mlp")  # example_shape (40, 1)
    assert model.hidden_layers[0].in_features == 40

  @pytest.mark.slow
  def test_resnet18_param_count_and_one_jitted_train_step(self, cifar_resnet18):
    # 11,173,962: the CIFAR ResNet-18 of kuangliu/pytorch-cifar (used by Toneva et al.), 10 classes.
    graphdef, params, model_state = models.split(cifar_resnet18)
    assert models.count_params(params) == 11_173_962
    assert len(params["blocks"]) == 8
    assert sum("shortcut_conv" in block for block in params["blocks"].values()) == 3
    x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
    step = jax.jit(functools.partial(models.apply, graphdef, train=True))
    logits, new_state = step(params, model_state, x)
    chex.assert_shape(logits, (2, 10))
    chex.assert_type(logits, jnp.float32)
    changed = jax.tree.map(lambda a, b: not np.allclose(a, b), model_state, new_state)
    assert len(jax.tree.leaves(changed)) == 2 * 20 and all(jax.tree.leaves(changed))

  def test_model_kwargs_are_the_documented_defaults(self):
    assert models.MODELS == ("mlp", "toneva_cnn", "small_cnn", "resnet18")
    turnover = dict(turnover_sites=(), turnover_rate=0.5)
    assert models.model_kwargs("mlp") == dict(hidden=(256, 256), use_bias=True, dropout=0.0,
                                              **turnover)
    assert models.model_kwargs("toneva_cnn") == dict(dropout=0.5, **turnover)
    assert models.model_kwargs("small_cnn") == dict(widths=(32, 64, 128), dropout=0.0, **turnover)
    assert models.model_kwargs("resnet18") == dict(width=64, dropout=0.0, **turnover)


class TestErrors:

  def test_unknown_name_lists_models(self):
    with pytest.raises(ValueError, match="unknown model 'vgg'") as info:
      models.create_model("vgg", num_classes=10, example_shape=(32, 32, 3), rngs=nnx.Rngs(0))
    message = str(info.value)
    assert "\n" not in message
    assert all(name in message for name in models.MODELS)

  def test_unknown_kwarg_is_named(self):
    with pytest.raises(ValueError, match="'widht'") as info:
      models.create_model(
          "resnet18", num_classes=10, example_shape=(32, 32, 3), rngs=nnx.Rngs(0), widht=32)
    assert "width=64" in str(info.value)

  def test_kwarg_of_another_model_is_rejected(self):
    with pytest.raises(ValueError, match="'hidden'"):
      small_model("small_cnn", hidden=(4,))

  @pytest.mark.parametrize("rate", [-0.1, 1.0])
  def test_bad_dropout_rate(self, rate):
    with pytest.raises(ValueError, match="dropout rate"):
      small_model("mlp", dropout=rate)

  @pytest.mark.parametrize("name", ["toneva_cnn", "small_cnn", "resnet18"])
  def test_cnn_needs_hwc_shape(self, name):
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
      models.create_model(name, num_classes=10, example_shape=(784,), rngs=nnx.Rngs(0))


class TestFunctional:

  @pytest.mark.parametrize("name", models.MODELS)
  def test_split_gives_plain_dicts(self, name, request):
    model = (request.getfixturevalue("cifar_resnet18") if name == "resnet18"
             else small_model(name))
    _, params, model_state = models.split(model)
    assert is_plain_dict_tree(params)
    assert is_plain_dict_tree(model_state)
    assert models.count_params(params) == models.count_params(model)
    if name in ("mlp", "toneva_cnn"):
      assert model_state == {}
    else:
      assert jax.tree.leaves(model_state)

  @pytest.mark.parametrize("name", ["mlp", "small_cnn"])
  @pytest.mark.parametrize("train", [False, True])
  def test_apply_matches_calling_the_module(self, name, train):
    model = small_model(name, dropout=0.3)
    graphdef, params, model_state = models.split(model)
    x, key = batch(name), jax.random.key(7)
    logits, new_state = models.apply(graphdef, params, model_state, x, train=train, key=key)
    expected = model(x, train=train, key=key)  # mutates the module's batch stats
    np.testing.assert_allclose(logits, expected, rtol=1e-6, atol=1e-6)
    tree_allclose(new_state, models.split(model)[2])

  def test_apply_under_jit(self):
    model = small_model("small_cnn")
    graphdef, params, model_state = models.split(model)
    x = batch("small_cnn")
    step = jax.jit(models.apply, static_argnames="train")
    for train in (False, True):
      eager = models.apply(graphdef, params, model_state, x, train=train)
      jitted = step(graphdef, params, model_state, x, train=train)
      tree_allclose(jitted, eager, rtol=1e-5, atol=1e-5)

  def test_vmap_over_stacked_seeds(self):
    seeds = (0, 1)
    splits = [models.split(small_model("mlp", seed=s)) for s in seeds]
    graphdef = splits[0][0]
    stacked_params = jax.tree.map(lambda *a: jnp.stack(a), *[s[1] for s in splits])
    stacked_state = jax.tree.map(lambda *a: jnp.stack(a), *[s[2] for s in splits])
    x = batch("mlp")

    def eval_logits(params, model_state):
      return models.apply(graphdef, params, model_state, x, train=False)[0]

    logits = jax.jit(jax.vmap(eval_logits))(stacked_params, stacked_state)
    chex.assert_shape(logits, (2, 4, NUM_CLASSES))
    for i, (_, params, model_state) in enumerate(splits):
      np.testing.assert_allclose(logits[i], eval_logits(params, model_state), rtol=1e-5, atol=1e-6)
    assert not np.allclose(logits[0], logits[1])

  def test_merge_inverts_split(self):
    model = small_model("small_cnn")
    graphdef, params, model_state = models.split(model)
    rebuilt = models.merge(graphdef, params, model_state)
    x = batch("small_cnn")
    np.testing.assert_allclose(rebuilt(x), model(x), rtol=1e-6)


class TestBatchNorm:

  @pytest.mark.parametrize("name", ["small_cnn"])
  def test_train_updates_running_stats(self, name):
    graphdef, params, model_state = models.split(small_model(name))
    _, new_state = models.apply(graphdef, params, model_state, batch(name), train=True)
    changed = jax.tree.map(lambda a, b: not np.allclose(a, b), model_state, new_state)
    assert all(jax.tree.leaves(changed))

  def test_eval_leaves_state_and_ignores_batch_composition(self):
    graphdef, params, model_state = models.split(small_model("small_cnn"))
    # Non-trivial running averages first, so eval mode is not just the init stats.
    _, model_state = models.apply(
        graphdef, params, model_state, batch("small_cnn", seed=1), train=True)
    x = batch("small_cnn", size=6)
    full, same_state = models.apply(graphdef, params, model_state, x, train=False)
    tree_allclose(same_state, model_state, rtol=0, atol=0)
    part, _ = models.apply(graphdef, params, model_state, x[2:4], train=False)
    np.testing.assert_allclose(part, full[2:4], rtol=1e-5, atol=1e-6)
    # Sanity check of the test: in train mode the batch composition does matter.
    full_train, _ = models.apply(graphdef, params, model_state, x, train=True)
    part_train, _ = models.apply(graphdef, params, model_state, x[2:4], train=True)
    assert not np.allclose(part_train, full_train[2:4], atol=1e-4)


class TestDropout:

  @pytest.mark.parametrize("name", CHEAP)
  def test_keys_control_randomness(self, name):
    model = small_model(name, dropout=0.5)
    x = batch(name)
    graphdef, params, model_state = models.split(model)

    def train_logits(key):
      return models.apply(graphdef, params, model_state, x, train=True, key=key)[0]

    k0, k1 = jax.random.key(0), jax.random.key(1)
    np.testing.assert_array_equal(train_logits(k0), train_logits(k0))
    assert not np.allclose(train_logits(k0), train_logits(k1))

  def test_eval_is_deterministic_and_ignores_key(self):
    model = small_model("mlp", dropout=0.5)
    x = batch("mlp")
    no_key = model(x, train=False)
    np.testing.assert_array_equal(model(x, train=False, key=jax.random.key(3)), no_key)
    np.testing.assert_array_equal(model(x), no_key)

  @pytest.mark.parametrize("name", models.MODELS)
  def test_missing_key_raises(self, name):
    # The check precedes any compute, so an abstract (shape-only) model suffices.
    model = nnx.eval_shape(lambda: small_model(name, dropout=0.5))
    with pytest.raises(ValueError, match="key"):
      model(batch(name), train=True)

  def test_no_key_needed_without_dropout(self):
    model = small_model("mlp", dropout=0.0)
    x = batch("mlp")
    np.testing.assert_array_equal(model(x, train=True), model(x))

  def test_channel_dropout_zeroes_whole_channels(self):
    x = jnp.ones((8, 6, 6, 16))
    y = np.asarray(dropout_lib.dropout(x, 0.5, jax.random.key(0), broadcast_axes=(1, 2)))
    per_channel = y.reshape(8, 36, 16)
    assert (per_channel == per_channel[:, :1]).all()  # constant over H, W
    assert set(np.unique(y)) == {0.0, 2.0}
    kept = per_channel[:, 0] > 0  # [B, C]
    assert 0.2 < kept.mean() < 0.8
    assert not (kept == kept[:1]).all()  # masks differ between examples

  def test_toneva_cnn_uses_channel_dropout_after_conv2(self, monkeypatch):
    outputs = []
    original = dropout_lib.dropout

    def recording_dropout(x, rate, key, **kw):
      out = original(x, rate, key, **kw)
      outputs.append(out)
      return out

    monkeypatch.setattr(toneva_cnn.dropout_lib, "dropout", recording_dropout, raising=True)
    model = small_model("toneva_cnn", dropout=0.5)
    model(batch("toneva_cnn"), train=True, key=jax.random.key(0))
    conv2_out, dense_out = (np.asarray(o) for o in outputs)
    assert conv2_out.shape == (4, 8, 8, 20) and dense_out.shape == (4, 50)
    channel_zero = (conv2_out == 0).all(axis=(1, 2))  # [B, C]
    assert channel_zero.any()
    nonzero_channels = np.abs(conv2_out).sum(axis=(1, 2)) > 0
    assert (channel_zero | nonzero_channels).all()
    assert math.isclose(dense_out[dense_out != 0].size / dense_out.size, 0.5, abs_tol=0.25)


class TestLeafPackage:

  def test_imports_only_jax_flax_numpy_and_stdlib(self):
    allowed = {"jax", "flax", "numpy", "__future__", "collections", "inspect", "math", "typing"}
    package_dir = pathlib.Path(models.__file__).parent
    for path in package_dir.glob("*.py"):
      for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
          roots = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
          roots = {node.module.split(".")[0]}
        else:
          continue  # relative imports stay inside the package
        assert roots <= allowed, f"{path.name} imports {roots - allowed}"
