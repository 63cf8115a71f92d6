"""Online prioritization inside the jitted loop, with fixed shapes (ideas A and E).

`--config.prioritization` (the method; its parameters are `prioritization_options`):

  uniform             every (active) example once per epoch, shuffled.
  selective_backprop  Jiang et al. 2019: each step forwards a chunk of `candidates` x B
                      examples in eval mode, keeps each with probability CDF(loss)^beta over
                      the last `sb_history` losses, and backpropagates the first B kept (a
                      fixed-shape batch; the rest of the chunk is skipped, padding is masked).
                      The first epoch uses every example (Jiang et al.; docs/definitions.md). The scoring forward costs
                      about a third of a training step per candidate.
  importance          loss-proportional importance sampling: each epoch draws ceil(N/B)
                      batches with replacement, p_i proportional to the last presentation
                      loss of i (mixed with uniform by `is_smoothing`; unseen examples count as
                      the largest loss), reweighted by 1/(N p_i) when `is_reweight` (unbiased)
                      or not (the biased variant Hu et al. also test).
  infobatch           Qin et al. 2024: each epoch drop a random `infobatch_ratio` of the
                      examples whose last loss is below the mean, scale the kept ones by
                      1/(1-r), and train on everything from `infobatch_anneal` of training on.
  noise_aware         InfoBatch restricted to the examples that a noise-separating score does
                      not flag: from epoch `noise_warmup` on, the `noise_fraction` of examples
                      with the highest `noise_score` (a training-split score of
                      `metrics.difficulty` computed from the running state, e.g. forgetting,
                      Toneva's rule, never learned first; or memorization_loss, turn-over
                      memorization) are excluded.

Each epoch's record in metrics.jsonl says how many examples were really backpropagated
(`examples_backpropagated`) and forwarded (`examples_forwarded`), and its wall time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from regularity_jax import models
from regularity_jax.data import batching
from regularity_jax.metrics.losses import cross_entropy
from regularity_jax.selection import online
from regularity_jax.training import steps
from regularity_jax.training.state import STREAM_STEP

KINDS = ("uniform", "selective_backprop", "importance", "infobatch", "noise_aware")


def epoch_plan(cfg, key: jax.Array, *, last_loss: jnp.ndarray, seen: jnp.ndarray,
               flag_scores: jnp.ndarray, base_active: jnp.ndarray, epoch: jnp.ndarray,
               num_epochs: int, batch_size: int) -> dict[str, jnp.ndarray]:
  """The batches of one epoch for prioritization config `cfg` (static fields; jit this).

  Args:
    cfg: the `prioritization_options` fields plus `kind` (the method; see `_Frozen` in loop).
    key: PRNG key of this epoch.
    last_loss: f32[N] last presentation loss per training row (NaN if unseen).
    seen: bool[N] rows with a known loss.
    flag_scores: f32[N] noise scores (higher = more likely noisy), for noise_aware.
    base_active: bool[N] rows allowed at all (static pruning / dynamic reduction).
    epoch: i32[] 0-based epoch.
    num_epochs, batch_size: static.

  Returns:
    positions i32[S, W], masks bool[S, W], row_weights f32[S, W] (W = B, or candidates x B
    for selective_backprop), example_weights f32[N] (InfoBatch rescaling), num_active i32[]
    (examples to present; the loop runs num_steps(num_active, W) rows).
  """
  n = last_loss.shape[0]
  kind = cfg.kind
  ones_n = jnp.ones((n,), jnp.float32)
  if kind in ("infobatch", "noise_aware"):
    allowed = base_active
    if kind == "noise_aware":
      flagged = online.noise_aware_mask(flag_scores, cfg.noise_fraction)
      allowed = allowed & jnp.where(epoch >= cfg.noise_warmup, flagged, True)
    active, weights = online.infobatch_plan(key, last_loss, seen & allowed, cfg.infobatch_ratio,
                                            epoch, num_epochs, cfg.infobatch_anneal)
    active = active & allowed
    positions, masks = batching.epoch_batches(jax.random.fold_in(key, 1), n, batch_size, active)
    return {"positions": positions, "masks": masks, "row_weights": jnp.ones(masks.shape),
            "example_weights": jnp.where(active, weights, 0.0), "num_active": jnp.sum(active)}
  if kind == "importance":
    steps_ = batching.num_steps(n, batch_size)
    probs = online.importance_probabilities(last_loss, cfg.is_smoothing, mask=base_active)
    idx = online.sample_indices(key, probs, steps_ * batch_size)
    w = (online.importance_weights(probs, idx, population=jnp.sum(base_active))
         if cfg.is_reweight else jnp.ones(idx.shape))
    shape = (steps_, batch_size)
    return {"positions": idx.reshape(shape), "masks": jnp.ones(shape, bool),
            "row_weights": w.reshape(shape), "example_weights": ones_n,
            "num_active": jnp.int32(steps_ * batch_size)}
  width = batch_size * (cfg.candidates if kind == "selective_backprop" else 1)
  positions, masks = batching.epoch_batches(key, n, width, base_active)
  return {"positions": positions, "masks": masks, "row_weights": jnp.ones(masks.shape),
          "example_weights": ones_n, "num_active": jnp.sum(base_active)}


def make_sb_epoch_step(train_step, graphdef, *, batch_size: int, beta: float,
                       augment_images: bool, crop_padding: int = 4):
  """Selective-Backprop's step: `(state, carry, split, positions, masks, row_weights)` like
  `steps.make_epoch_step`, but each row holds candidates x B candidates, of which at most B
  selected ones are backpropagated. Needs `state.extra["sb"]` (an `online.SBState`)."""

  def sb_step(state, carry, split, positions, masks, row_weights):
    del row_weights
    row = carry["row"]
    batch = steps.row_batch(state, split, positions, masks, row, augment_images=augment_images,
                            crop_padding=crop_padding)
    mask = batch["mask"]
    logits, _ = models.apply(graphdef, state.params, state.model_state, batch["image"], train=False)
    losses = cross_entropy(logits, batch["label"])
    history = online.sb_update(state.extra["sb"], losses, mask)  # push first, as the reference
    selected = online.sb_select(state.rng(STREAM_STEP, state.step, 3), history, losses, mask, beta)
    order = jnp.argsort(~selected, stable=True)[:batch_size]
    train_batch = {k: v[order] for k, v in batch.items()}
    train_batch["mask"] = selected[order]
    state = state.replace(extra={**state.extra, "sb": history})
    state, per_example = train_step(state, train_batch)
    return state, {"row": row + 1,
                   "sums": carry["sums"] + steps.batch_sums(per_example, train_batch["mask"]),
                   "forwarded": carry["forwarded"] + jnp.sum(mask)}

  return sb_step
