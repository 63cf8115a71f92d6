"""On-device image augmentation: random crop after zero padding, and horizontal flip.

Randomness is per example, from `fold_in(key, example_id)`, so an example's augmentation at a
given step does not depend on which batch or which device it lands on (this is what makes
1-device and N-device runs agree).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def crop_and_flip(key: jax.Array, images: jnp.ndarray, ids: jnp.ndarray, *,
                  padding: int = 4, flip: bool = True) -> jnp.ndarray:
  """Random `padding`-pixel translation (zero fill) and random left-right flip.

  Args:
    key: PRNG key of this step.
    images: f32[B, H, W, C].
    ids: i32[B] example ids (seed the per-example randomness).
    padding: maximum shift in pixels; 0 disables cropping.
    flip: whether to flip with probability 1/2.

  Returns:
    f32[B, H, W, C].
  """
  if images.ndim != 4:
    raise ValueError(f"crop_and_flip needs images of shape [B, H, W, C], got {images.shape}; "
                     "set augment=False for non-image data")
  _, h, w, _ = images.shape

  def one(image, example_id):
    k_crop, k_flip = jax.random.split(jax.random.fold_in(key, example_id))
    if padding > 0:
      padded = jnp.pad(image, ((padding, padding), (padding, padding), (0, 0)))
      dy, dx = jax.random.randint(k_crop, (2,), 0, 2 * padding + 1)
      image = jax.lax.dynamic_slice(padded, (dy, dx, 0), (h, w, image.shape[-1]))
    if flip:
      image = jnp.where(jax.random.bernoulli(k_flip), image[:, ::-1, :], image)
    return image

  return jax.vmap(one)(images, ids)
