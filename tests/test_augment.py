"""data/augment.py against a slow per-example reference (numpy padding, slicing, flipping)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regularity_jax.data import augment


def reference(key, images, ids, padding, flip):
  """One example at a time, in numpy, with the keys the module documents:
  split(fold_in(key, id)) -> (crop key, flip key)."""
  out = []
  for image, example_id in zip(np.asarray(images), np.asarray(ids)):
    k_crop, k_flip = jax.random.split(jax.random.fold_in(key, int(example_id)))
    h, w, _ = image.shape
    if padding:
      padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
      dy, dx = np.asarray(jax.random.randint(k_crop, (2,), 0, 2 * padding + 1))
      image = padded[dy:dy + h, dx:dx + w]
    if flip and bool(jax.random.bernoulli(k_flip)):
      image = image[:, ::-1]
    out.append(image)
  return np.stack(out)


@pytest.mark.parametrize("padding,flip", [(2, True), (0, False)])
def test_equals_the_reference(padding, flip):
  key = jax.random.key(7)
  images = np.random.default_rng(1).normal(size=(4, 5, 4, 3)).astype(np.float32)
  ids = jnp.array([9, 3, 3, 41])
  crop_and_flip = jax.jit(augment.crop_and_flip, static_argnames=("padding", "flip"))
  got = crop_and_flip(key, images, ids, padding=padding, flip=flip)
  np.testing.assert_array_equal(np.asarray(got), reference(key, images, ids, padding, flip))
  if not padding and not flip:
    np.testing.assert_array_equal(np.asarray(got), np.asarray(images))


def test_an_example_moves_the_same_wherever_it_sits_in_the_batch():
  key = jax.random.key(3)
  images = jnp.broadcast_to(jnp.arange(16.0).reshape(1, 4, 4, 1), (4, 4, 4, 1))
  ids = jnp.array([5, 6, 7, 8])
  crop_and_flip = jax.jit(augment.crop_and_flip)
  first = crop_and_flip(key, images, ids)
  moved = crop_and_flip(key, images[::-1], ids[::-1])
  np.testing.assert_array_equal(np.asarray(first), np.asarray(moved)[::-1])


def test_non_image_data_is_refused_in_one_line():
  with pytest.raises(ValueError, match=r"\[B, H, W, C\].*augment=False"):
    augment.crop_and_flip(jax.random.key(0), jnp.zeros((2, 40, 1)), jnp.arange(2))
