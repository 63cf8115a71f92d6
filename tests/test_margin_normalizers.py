"""Network-norm normalizers (models/norms.py) against slow NumPy references, and invariances."""

import functools

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regularity_jax import models
from regularity_jax.metrics import logit_margin
from regularity_jax.models import norms

BN_EPS = 1e-5  # small_cnn and resnet18 build their BatchNorms with epsilon 1e-5
TINY = {
    "mlp": ((6, 6, 1), {"hidden": (8,)}),
    "toneva_cnn": ((16, 16, 1), {"dropout": 0.0}),
    "small_cnn": ((8, 8, 2), {"widths": (4, 8)}),
    "resnet18": ((8, 8, 3), {"width": 2}),
}


def tiny(name, seed=0, **overrides):
  shape, kwargs = TINY[name]
  model = models.create_model(
      name, num_classes=3, example_shape=shape, rngs=nnx.Rngs(seed), **{**kwargs, **overrides})
  return models.split(model)


def randomize_batch_norm(params, model_state, seed=1):
  """Random gamma, beta, running mean and var (var > 0) for every BN, so folding matters."""
  rng = np.random.default_rng(seed)

  def walk(p, s):
    for key in p:
      if isinstance(p[key], dict) and set(p[key]) == {"scale", "bias"}:
        o = p[key]["scale"].shape
        p[key] = {"scale": jnp.asarray(rng.uniform(0.2, 3.0, o), jnp.float32),
                  "bias": jnp.asarray(rng.normal(size=o), jnp.float32)}
        s[key] = {"mean": jnp.asarray(rng.normal(size=o), jnp.float32),
                  "var": jnp.asarray(rng.uniform(0.05, 4.0, o), jnp.float32)}
      elif isinstance(p[key], dict):
        walk(p[key], s.setdefault(key, {}))

  params = jax.tree.map(lambda a: a, params)
  model_state = jax.tree.map(lambda a: a, model_state)
  walk(params, model_state)
  return params, model_state


def flat(tree, prefix=()):
  """{path tuple: leaf} of a nested dict."""
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(flat(value, prefix + (key,)))
    else:
      out[prefix + (key,)] = np.asarray(value, np.float64)
  return out


def reference_frobenius_product(params, model_state, bn_pairs):
  """Slow obvious version: fold each listed (bn path -> conv path) by hand, multiply norms."""
  p, s = flat(params), flat(model_state)
  kernels = {path[:-1]: w for path, w in p.items() if path[-1] == "kernel"}
  for bn, conv in bn_pairs.items():
    gain = p[bn + ("scale",)] / np.sqrt(s[bn + ("var",)] + BN_EPS)
    kernels[conv] = kernels[conv] * gain  # last axis = output channels
  return float(np.prod([np.sqrt(np.sum(w ** 2)) for w in kernels.values()]))


def small_cnn_pairs(num_blocks):
  return {("blocks", i, "bn"): ("blocks", i, "conv") for i in range(num_blocks)}


def resnet18_pairs(params):
  pairs = {("stem_bn",): ("stem_conv",)}
  for i, block in params["blocks"].items():
    for bn, conv in (("bn1", "conv1"), ("bn2", "conv2"), ("shortcut_bn", "shortcut_conv")):
      if bn in block:
        pairs[("blocks", i, bn)] = ("blocks", i, conv)
  return pairs


class TestNetworkNorm:

  @pytest.mark.parametrize("name", ["mlp", "toneva_cnn"])
  def test_frobenius_product_without_batch_norm(self, name):
    _, params, model_state = tiny(name)
    got = norms.network_norm(params, model_state, kind="frobenius_product", model=name)
    want = reference_frobenius_product(params, model_state, {})
    np.testing.assert_allclose(got, want, rtol=1e-5)

  def test_frobenius_product_folds_small_cnn_batch_norm(self):
    _, params, model_state = tiny("small_cnn")
    params, model_state = randomize_batch_norm(params, model_state)
    got = norms.network_norm(params, model_state, kind="frobenius_product", model="small_cnn")
    want = reference_frobenius_product(params, model_state, small_cnn_pairs(2))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    unfolded = reference_frobenius_product(params, model_state, {})
    assert abs(float(got) / unfolded - 1) > 1e-2  # the fold changed the answer

  @pytest.mark.slow
  def test_frobenius_product_folds_all_resnet18_batch_norms(self):
    _, params, model_state = tiny("resnet18")
    params, model_state = randomize_batch_norm(params, model_state)
    pairs = resnet18_pairs(params)
    assert len(pairs) == 20  # stem + 16 block convs + 3 shortcuts
    got = norms.log_network_norm(params, model_state, kind="frobenius_product", model="resnet18")
    want = reference_frobenius_product(params, model_state, pairs)
    np.testing.assert_allclose(got, np.log(want), rtol=1e-5)

  def test_identity_batch_norm_gives_plain_product(self):
    # gamma = 1, var = 1 - eps, mean = 0 (beta anything): the fold multiplies by 1 exactly.
    _, params, model_state = tiny("small_cnn")
    params, model_state = randomize_batch_norm(params, model_state)
    for i in (0, 1):
      params["blocks"][i]["bn"]["scale"] = jnp.ones_like(params["blocks"][i]["bn"]["scale"])
      stats = model_state["blocks"][i]["bn"]
      stats["var"] = jnp.full_like(stats["var"], 1.0 - BN_EPS)
      stats["mean"] = jnp.zeros_like(stats["mean"])
    got = norms.network_norm(params, model_state, kind="frobenius_product", model="small_cnn")
    np.testing.assert_allclose(got, reference_frobenius_product(params, model_state, {}),
                               rtol=1e-5)

  @pytest.mark.parametrize("name,head", [
      ("mlp", "head"), ("toneva_cnn", "fc2"), ("small_cnn", "head"),
      pytest.param("resnet18", "head", marks=pytest.mark.slow)])
  def test_last_layer(self, name, head):
    _, params, model_state = tiny(name)
    got = norms.network_norm(params, model_state, kind="last_layer", model=name)
    np.testing.assert_allclose(got, np.linalg.norm(np.ravel(params[head]["kernel"])), rtol=1e-6)

  def test_none_is_one(self):
    _, params, model_state = tiny("small_cnn")
    assert float(norms.network_norm(params, model_state, kind="none", model="small_cnn")) == 1.0

  def test_default_is_frobenius_product(self):
    assert norms.DEFAULT_NORMALIZER == "frobenius_product"
    _, params, model_state = tiny("mlp")
    np.testing.assert_allclose(
        norms.network_norm(params, model_state, model="mlp"),
        norms.network_norm(params, model_state, kind="frobenius_product", model="mlp"))

  def test_jit(self):
    _, params, model_state = tiny("small_cnn")
    params, model_state = randomize_batch_norm(params, model_state)
    for kind in norms.NORMALIZERS:
      fn = functools.partial(norms.network_norm, kind=kind, model="small_cnn")
      np.testing.assert_allclose(jax.jit(fn)(params, model_state), fn(params, model_state),
                                 rtol=1e-6)

  def test_unknown_kind_names_the_choices(self):
    _, params, model_state = tiny("mlp")
    with pytest.raises(ValueError, match="frobenius_product, last_layer, none"):
      norms.network_norm(params, model_state, kind="spectral", model="mlp")

  def test_unknown_model(self):
    _, params, model_state = tiny("mlp")
    with pytest.raises(ValueError, match="unknown model"):
      norms.network_norm(params, model_state, kind="frobenius_product", model="vgg")

  def test_batch_norm_without_conv_is_an_error(self):
    _, params, model_state = tiny("small_cnn")
    params["blocks"][0]["renamed"] = params["blocks"][0].pop("conv")
    with pytest.raises(ValueError, match="no conv"):
      norms.network_norm(params, model_state, kind="frobenius_product", model="small_cnn")


class TestBatchNormFold:

  def test_fold_reproduces_eval_mode_conv_bn(self):
    rngs = nnx.Rngs(0)
    conv = nnx.Conv(2, 4, kernel_size=(3, 3), padding="SAME", use_bias=False, rngs=rngs)
    bn = nnx.BatchNorm(4, epsilon=BN_EPS, rngs=rngs)
    rng = np.random.default_rng(0)
    bn.scale[...] = jnp.asarray(rng.uniform(0.2, 3.0, 4), jnp.float32)
    bn.bias[...] = jnp.asarray(rng.normal(size=4), jnp.float32)
    bn.mean[...] = jnp.asarray(rng.normal(size=4), jnp.float32)
    bn.var[...] = jnp.asarray(rng.uniform(0.05, 4.0, 4), jnp.float32)
    x = jnp.asarray(rng.normal(size=(2, 5, 5, 2)), jnp.float32)
    want = bn(conv(x), use_running_average=True)
    kernel, bias = norms.fold_batch_norm(
        conv.kernel[...], bn.scale[...], bn.bias[...], bn.mean[...], bn.var[...], BN_EPS)
    got = jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

  def test_rescaling_conv_with_its_running_stats_leaves_norm_unchanged(self):
    # W -> c W, mean -> c mean, var -> c^2 var (+ eps correction) is an eval-mode no-op.
    _, params, model_state = tiny("small_cnn")
    params, model_state = randomize_batch_norm(params, model_state)
    before = norms.network_norm(params, model_state, model="small_cnn")
    c = 7.0
    params["blocks"][0]["conv"]["kernel"] = params["blocks"][0]["conv"]["kernel"] * c
    stats = model_state["blocks"][0]["bn"]
    stats["mean"] = stats["mean"] * c
    stats["var"] = (stats["var"] + BN_EPS) * c ** 2 - BN_EPS
    after = norms.network_norm(params, model_state, model="small_cnn")
    np.testing.assert_allclose(after, before, rtol=1e-5)


class TestNormalizedMargin:

  def test_divides(self):
    got = norms.normalized_margin(jnp.array([2.0, -1.0, 0.0]), jnp.float32(4.0))
    np.testing.assert_array_equal(got, [0.5, -0.25, 0.0])

  def test_homogeneous_mlp_normalized_margin_is_scale_invariant(self):
    graphdef, params, model_state = tiny("mlp", hidden=(8, 8), use_bias=False)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(16, 6, 6, 1)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 3, 16), jnp.int32)

    def margins(p):
      logits, _ = models.apply(graphdef, p, model_state, x, train=False)
      raw = logit_margin(logits, labels)
      return raw, norms.normalized_margin(raw, norms.network_norm(p, model_state, model="mlp"))

    raw, normalized = margins(params)
    scaled = jax.tree.map(lambda a: a, params)
    for layer, c in zip(("hidden_layers/0", "hidden_layers/1", "head"), (0.3, 5.0, 2.5)):
      sub = scaled
      for key in layer.split("/"):
        sub = sub[int(key) if key.isdigit() else key]
      sub["kernel"] = sub["kernel"] * c
    raw_scaled, normalized_scaled = margins(scaled)
    np.testing.assert_allclose(raw_scaled, raw * 0.3 * 5.0 * 2.5, rtol=1e-4, atol=1e-6)
    assert np.max(np.abs(raw_scaled - raw)) > 0.1
    np.testing.assert_allclose(normalized_scaled, normalized, rtol=1e-5, atol=1e-5)
