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

Where the masks act. A built-in model lists its sites (`turnover_available`) and takes the
context as `model(x, ..., turnover=context)`; site s is its index in that list. Any other NNX
model places `TurnOverSite(name)` layers where masks should act and needs no extra argument: the
engine hands the context to every site through `active(context)` around the forward pass (inside
the jitted call, while it traces), and `configure_sites` switches the sites the config names on.
Such a site's s is `site_index(name)`, a stable hash of its name, so adding, removing or moving
another site never changes its masks.
"""

from __future__ import annotations

from collections.abc import Sequence

from flax import nnx
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
  """Applies the turn-over mask of `site` to features x: f32[B, ..., D] (e.g. [B, D] or
  [B, H, W, C]; one mask value per example and last-axis unit, shared over the axes between)."""
  if turnover is None or turnover.mode == "full":
    return x
  if x.ndim < 2:
    raise ValueError(f"turn-over sites take features [B, ..., D] (e.g. [B, D] or [B, H, W, C]), "
                     f"got {x.shape}")
  m = example_masks(turnover.key, site, turnover.ids, (x.shape[-1],), rate)
  m = m.reshape((m.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],))  # shared over H, W, ...
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


_ACTIVE: list[TurnOver | None] = []  # the contexts of the forward passes being traced


class active:  # pylint: disable=invalid-name
  """`with active(turnover):` every `TurnOverSite` called inside the block applies `turnover`
  (None: mode "full"). Read while the forward pass traces, so it costs nothing per step."""

  def __init__(self, turnover: TurnOver | None):
    self.turnover = turnover

  def __enter__(self) -> None:
    _ACTIVE.append(self.turnover)

  def __exit__(self, *exc) -> None:
    _ACTIVE.pop()


def site_index(name: str) -> int:
  """The fold_in index of the `TurnOverSite` named `name`: its 32-bit FNV-1a hash over UTF-8,
  with the top bit cleared (stable across processes and Python versions, unlike `hash`), so the
  same name gives the same masks in any model, at any position."""
  h = 0x811C9DC5
  for byte in name.encode():
    h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
  return h & 0x7FFFFFFF


class TurnOverSite(nnx.Module):
  """A layer where turn-over masks act: identity unless the engine switched it on
  (`configure_sites`) and a context is `active`; then `apply_site` with `site_index(name)`.

    self.site = TurnOverSite("features")      # in __init__
    x = self.site(x)                          # in __call__, on features [B, ..., D]

  Attributes:
    name: the site's name (config `turnover.sites` picks sites by it); static.
    enabled, rate: set by `configure_sites`; static.
  """

  def __init__(self, name: str):
    if not isinstance(name, str) or not name:
      raise ValueError(f"TurnOverSite needs a non-empty name, got {name!r}")
    self.name = name
    self.enabled = False
    self.rate = 0.5

  def __call__(self, x: jax.Array) -> jax.Array:
    """x: f32[B, ..., D] -> the same shape and dtype."""
    if not self.enabled:
      return x
    return apply_site(x, _ACTIVE[-1] if _ACTIVE else None, site_index(self.name), self.rate)


def sites(model) -> dict[str, TurnOverSite]:
  """The `TurnOverSite` layers of `model` by name; ValueError if two share a name (they would
  share masks)."""
  found: dict[str, TurnOverSite] = {}
  for _, node in nnx.iter_graph(model):
    if isinstance(node, TurnOverSite):
      if node.name in found and found[node.name] is not node:
        raise ValueError(f"two TurnOverSite layers are named {node.name!r}; give each its own "
                         "name (the name picks its masks)")
      found[node.name] = node
  return found


def configure_sites(model, enabled: Sequence[str], rate: float) -> tuple[str, ...]:
  """Switches on the `TurnOverSite` layers of `model` named in `enabled` (or ("all",)) with
  drop rate `rate`; returns their names. ValueError for a name the model does not have."""
  found = sites(model)
  names, rate = resolve_sites(tuple(found), enabled, rate)
  for name, site in found.items():
    site.enabled = name in names
    site.rate = rate
  return names
