"""Single-pass per-example difficulty scores: EL2N and GraNd (Paul et al. 2021, arXiv 2107.07075)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp


def el2n(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
  """Error L2 norm: `||softmax(logits) - onehot(y)||_2`.

  Args:
    logits: [B, C], any float dtype (computed in float32).
    labels: i32[B].

  Returns:
    f32[B], in [0, sqrt(2)].
  """
  probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
  onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=jnp.float32)
  return jnp.linalg.norm(probs - onehot, axis=-1)


def grand(loss_fn: Callable[[Any, Any], jnp.ndarray], params: Any, batch: Any, *,
          chunk_size: int | None = None) -> jnp.ndarray:
  """Gradient norm: `||grad_params loss_fn(params, example)||_2` for every example of a batch.

  Computed as `vmap(grad(loss_fn))` over the leading axis of `batch`, then the global L2 norm
  over all parameter leaves of each per-example gradient.

  Cost: the FLOPs of about one forward and one backward pass over the batch (a training step
  without the optimizer update), but the per-example weight gradients are materialized:
  memory grows as B x num_params, and the weight-gradient products run per example instead of
  as one batched matmul, so on accelerators it is several times slower than a training step
  (see benchmarks/RESULTS.md). `chunk_size` bounds memory by running `chunk_size` examples at
  a time with `lax.map`; B must then be a multiple of it.

  Args:
    loss_fn: `loss_fn(params, example) -> f32[]`, the loss of ONE example (no batch axis); close
      over anything else it needs (batch-norm statistics in eval mode, for instance).
    params: the pytree to differentiate with respect to.
    batch: pytree whose leaves all have a leading batch axis B (e.g. {"image", "label"}).
    chunk_size: examples per vectorized chunk; None runs the whole batch at once.

  Returns:
    f32[B] per-example gradient norms.
  """

  def norm_one(example):
    grads = jax.grad(loss_fn)(params, example)
    leaves = jax.tree_util.tree_leaves(grads)
    return jnp.sqrt(sum(jnp.sum(jnp.square(g.astype(jnp.float32))) for g in leaves))

  if chunk_size is None:
    return jax.vmap(norm_one)(batch)
  return jax.lax.map(norm_one, batch, batch_size=chunk_size)
