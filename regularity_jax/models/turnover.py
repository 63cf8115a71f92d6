"""Turn-over dropout (Kobayashi et al. 2020, arXiv 2012.04207): a fixed mask per example.

Training example i owns one dropout mask m_i per turn-over site (layer), derived from its id:
the mask of site s is `bernoulli(fold_in(fold_in(key, s), i), 1 - rate)` over the site's units
(dense features) or channels (conv feature maps, shared over H and W). Example i only ever
trains the sub-network m_i, so the flipped sub-network 1 - m_i is a model that never saw it.

Modes:
  own      x * m_i / (1 - rate)   (training, and "the model that saw i")
  flipped  x * (1 - m_i) / rate   ("the model that did not see i"); with rate 0.5 both scalings
                                  are 2, the usual inverted-dropout factor
  full     x                      (no mask: the whole network, e.g. for test examples)

`key` is fixed for the whole run (a stream of the run key), so the masks never change.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.struct
import jax
import jax.numpy as jnp

MODES = ("own", "flipped", "full")


@flax.struct.dataclass
class TurnOver:
  """The turn-over context of one forward pass.

  Attributes:
    key: PRNG key of the run's mask stream (typed key or raw u32[2]); the same all run.
    ids: i32[B] example ids of the batch rows (the owners of the masks).
    mode: static, one of MODES.
  """
  key: jax.Array
  ids: jax.Array
  mode: str = flax.struct.field(pytree_node=False, default="own")

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f"unknown turn-over mode {self.mode!r}; choose one of {MODES}")


def _typed(key: jax.Array) -> jax.Array:
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    return key
  return jax.random.wrap_key_data(key)


def example_masks(key: jax.Array, site: int, ids: jax.Array, shape: Sequence[int],
                  rate: float) -> jax.Array:
  """m_i of every row: bool[B, *shape], True where unit/channel belongs to m_i.

  Args:
    key: the run's turn-over key.
    site: index of the turn-over site (layer) in the model's full site list.
    ids: i32[B] example ids.
    shape: per-example mask shape, (D,) for dense features or (C,) for channels.
    rate: drop rate p; each unit is in m_i with probability 1 - p.
  """
  site_key = jax.random.fold_in(_typed(key), site)
  return jax.vmap(lambda i: jax.random.bernoulli(jax.random.fold_in(site_key, i), 1.0 - rate,
                                                 tuple(shape)))(ids)


def apply_site(x: jax.Array, turnover: TurnOver | None, site: int, rate: float) -> jax.Array:
  """Applies the turn-over mask of `site` to features x: f32[B, D] or f32[B, H, W, C]."""
  if turnover is None or turnover.mode == "full":
    return x
  m = example_masks(turnover.key, site, turnover.ids, (x.shape[-1],), rate)
  if x.ndim == 4:
    m = m[:, None, None, :]
  elif x.ndim != 2:
    raise ValueError(f"turn-over sites take [B, D] or [B, H, W, C] features, got {x.shape}")
  if turnover.mode == "own":
    keep, scale = m, 1.0 / (1.0 - rate)
  else:
    keep, scale = ~m, 1.0 / rate
  return jnp.where(keep, x * scale, jnp.zeros_like(x)).astype(x.dtype)


def resolve_sites(available: Sequence[str], enabled: Sequence[str], rate: float
                  ) -> tuple[tuple[str, ...], float]:
  """Validates a model's turn-over options; returns (enabled site names, rate).

  Args:
    available: every site name of the model, in order (the order fixes the fold_in index).
    enabled: names to enable, or ("all",).
    rate: drop rate in (0, 1).
  """
  available, enabled = tuple(available), tuple(enabled)
  if enabled == ("all",):
    enabled = available
  unknown = [s for s in enabled if s not in available]
  if unknown:
    raise ValueError(f"unknown turn-over site(s) {unknown}; this model has "
                     f"{list(available)} (or 'all')")
  if enabled and not 0.0 < float(rate) < 1.0:
    raise ValueError(f"turnover_rate must be in (0, 1), got {rate}")
  return enabled, float(rate)


def at_site(module, name: str, x: jax.Array, turnover: TurnOver | None) -> jax.Array:
  """Applies site `name` of `module` if enabled there (reads the module's static attributes
  `turnover_available`, `turnover_enabled`, `turnover_rate`)."""
  if name not in module.turnover_enabled:
    return x
  return apply_site(x, turnover, module.turnover_available.index(name), module.turnover_rate)
