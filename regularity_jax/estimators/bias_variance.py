"""Bias/variance split of a sample's generalization error over several models (idea D).

Zhou, Wu et al. 2023 (arXiv 2301.04850) define a sample's difficulty as its expected
generalization error over models that did not train on it, and split it into bias and
variance over those models. We use the squared error of the predicted probabilities (the
Brier score), whose decomposition is exact:

  error(x)    = E_r ||p_r(x) - onehot(y)||^2
              = ||p_bar(x) - onehot(y)||^2   (bias^2)
              + E_r ||p_r(x) - p_bar(x)||^2  (variance),      p_bar = E_r p_r

With turn-over dropout, p_r(x) is the flipped sub-network's softmax on training example x in
run r (`scores.npz` key `train/flipped_prob`), so R runs (seeds) give the split for every
training example without retraining per example.
"""

from __future__ import annotations

import jax.numpy as jnp


def bias_variance(probs: jnp.ndarray, labels: jnp.ndarray) -> dict[str, jnp.ndarray]:
  """probs: f32[R, N, C] held-out predictions of R models, labels: i32[N] -> f32[N] each of
  `error`, `bias` (the bias^2 term) and `variance`; error == bias + variance exactly."""
  probs = jnp.asarray(probs, jnp.float32)
  onehot = jnp.eye(probs.shape[-1], dtype=jnp.float32)[jnp.asarray(labels)]
  mean = jnp.mean(probs, axis=0)
  return {"error": jnp.mean(jnp.sum((probs - onehot) ** 2, -1), axis=0),
          "bias": jnp.sum((mean - onehot) ** 2, -1),
          "variance": jnp.mean(jnp.sum((probs - mean) ** 2, -1), axis=0)}
