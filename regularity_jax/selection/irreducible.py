"""RHO-LOSS's irreducible-loss model (Mindermann et al. 2022, arXiv 2206.07137).

A small model trained on a holdout set only, once, before the main run: its loss on a training
example, L(y | x; holdout), estimates the part of that example's loss no amount of training on
the training set removes (noise, ambiguity). The main run then backpropagates the candidates
with the highest *reducible* loss, L(y | x; model) - L(y | x; holdout) (the paper's Eq. 3).

  logits_in_batches(apply_fn, params, model_state, images, batch_size)   f32[N, C], eval mode
  train(graphdef, params, model_state, tx, images, labels, ...)  -> (params, model_state)
  irreducible_losses(...)                                        f32[N] on the training split

Pure functions of arrays and keys: the same inputs give the same model, so a resumed run
recomputes the same irreducible losses bit for bit.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from regularity_jax import models
from regularity_jax.data import batching
from regularity_jax.metrics.losses import cross_entropy


def logits_in_batches(graphdef, params, model_state, images: np.ndarray,
                      batch_size: int, batches_per_call: int | None = None) -> np.ndarray:
  """Eval-mode logits f32[N, C] of `images` f32[N, ...], in fixed-size padded batches (one
  compilation per shape) with one `lax.map` over them; `batches_per_call`: at most that many
  batches on the device at a time (one call each; None: all of `images` in one call)."""
  n = len(images)
  num = max(1, -(-n // batch_size))
  per_call = num if batches_per_call is None else max(1, min(num, int(batches_per_call)))
  rows = per_call * batch_size

  @jax.jit
  def run(params, model_state, x):
    def one(xb):
      return models.apply(graphdef, params, model_state, xb, train=False)[0].astype(jnp.float32)
    return jax.lax.map(one, x.reshape((per_call, batch_size) + x.shape[1:]))

  out = []
  for start in range(0, num * batch_size, rows):
    padded = np.zeros((rows,) + images.shape[1:], np.float32)
    chunk = images[start:start + rows]
    padded[:len(chunk)] = chunk
    out.append(np.asarray(jax.device_get(run(params, model_state, jnp.asarray(padded)))))
  return np.concatenate(out).reshape(-1, out[0].shape[-1])[:n]


def make_epoch(graphdef, tx: optax.GradientTransformation, batch_size: int) -> Callable:
  """`epoch(params, model_state, opt_state, images, labels, key)` -> the three after one
  shuffled epoch of mean cross-entropy SGD (train mode, dropout keyed by `key`)."""

  def epoch(params, model_state, opt_state, images, labels, key):
    order_key, dropout_key = jax.random.split(key)
    positions, masks = batching.epoch_batches(order_key, labels.shape[0], batch_size,
                                              jnp.ones(labels.shape[0], bool))

    def step(carry, row):
      params, model_state, opt_state, j = carry
      pos, mask = row

      def loss_fn(p):
        logits, new_state = models.apply(graphdef, p, model_state, images[pos], train=True,
                                         key=jax.random.fold_in(dropout_key, j))
        losses = cross_entropy(logits, labels[pos]) * mask
        return jnp.sum(losses) / jnp.maximum(jnp.sum(mask), 1), new_state

      grads, new_state = jax.grad(loss_fn, has_aux=True)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), new_state, opt_state, j + 1), None

    (params, model_state, opt_state, _), _ = jax.lax.scan(
        step, (params, model_state, opt_state, jnp.int32(0)), (positions, masks))
    return params, model_state, opt_state

  return jax.jit(epoch)


def train(graphdef, params, model_state, tx: optax.GradientTransformation, images: np.ndarray,
          labels: np.ndarray, *, epochs: int, batch_size: int, key: jax.Array,
          progress: bool = True) -> tuple[Any, Any]:
  """The irreducible-loss model: `epochs` epochs of `tx` on (images f32[H, ...], labels i32[H])."""
  epoch = make_epoch(graphdef, tx, min(batch_size, len(labels)))
  opt_state = tx.init(params)
  x, y = jnp.asarray(images), jnp.asarray(labels, jnp.int32)
  for e in tqdm.trange(epochs, desc="irreducible-loss model", unit="epoch", disable=not progress,
                       leave=False):
    params, model_state, opt_state = epoch(params, model_state, opt_state, x, y,
                                           jax.random.fold_in(key, e))
  return params, model_state


def irreducible_losses(graphdef, params, model_state, images: np.ndarray, labels: np.ndarray,
                       batch_size: int, batches_per_call: int | None = None) -> np.ndarray:
  """f32[N]: the irreducible-loss model's eval-mode cross-entropy on each (image, label)
  (`batches_per_call`: as in `logits_in_batches`)."""
  logits = logits_in_batches(graphdef, params, model_state, images, batch_size,
                             batches_per_call)
  return np.asarray(cross_entropy(jnp.asarray(logits), jnp.asarray(labels, jnp.int32)),
                    np.float32)
