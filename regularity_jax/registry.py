"""Parts of a run and their registries: one door for the built-ins and for user parts.

A *part* is one piece a config names: a tracker statistic (`tracking.kernels`), an evaluator
(`evaluators`), a feature (`features.*` blocks: holdout, pruning, turn-over...), a
prioritization method (`prioritization`), a weighting scheme (`weighting.scheme`), a pruning
rule (`pruning.rule`) or a margin normalizer (`margins.normalizer`). docs/parts.md states the
contract; in short, a part

  * is built from ITS OWN config block plus the run-wide fields `RUN_WIDE` (`block_view`),
    and reads nothing else of the config;
  * validates itself (one-line `ConfigError`) before the run directory is claimed;
  * owns its state, its jitted programs and its scores.npz columns;
  * declares a `phase` (`FEATURE_PHASES`, `EVALUATOR_PHASES`): hooks run in phase order, never
    in the order a config lists parts.

Each kind of part has one `Registry`: a read-only mapping {name: part} of the built-ins (so
`registry[name]`, `name in registry` and `tuple(registry)` keep working) whose `get` also
resolves a user part by import path, 'package.module:Name' or 'path/to/file.py:Name' (a
relative path from `base_dir`, else the current directory), through the same door as user
models and datasets (`training.parts.import_attr`). A resolved user part is remembered under
its spec, so later lookups by that spec find it.
"""

from __future__ import annotations

import collections.abc
import difflib
import os
from typing import Any, Callable, Iterator, Mapping

# The run-wide fields every part may read besides its own block: the one list.
RUN_WIDE = ("seed", "num_epochs", "batch_size", "dataset", "model")

# Features run their hooks in this order of phases (then in registry order within a phase).
FEATURE_PHASES = ("data", "selection", "model", "weighting", "reduction", "prioritization")
# Evaluators: the evaluation passes, what reads their results, and what runs every epoch.
EVALUATOR_PHASES = ("passes", "estimates", "every_epoch")


class PartError(ValueError):
  """A part cannot be found or built (one line: the problem and the fix)."""


def is_import_path(spec: Any) -> bool:
  """Whether `spec` names a part by import path ('pkg.mod:Name' or 'path/file.py:Name')."""
  if not isinstance(spec, str):
    return False
  module, sep, attr = spec.rpartition(":")
  return bool(sep and module and attr and all(p.isidentifier() for p in attr.split(".")))


def did_you_mean(value: Any, allowed) -> str:
  """'did you mean "x"? ' for the allowed name closest to `value` (case aside), else ''."""
  names = [str(a) for a in allowed]
  lowered = {n.lower(): n for n in names}
  text = str(value)
  if text.lower() in lowered:
    return f'did you mean "{lowered[text.lower()]}"? '
  close = difflib.get_close_matches(text.lower(), list(lowered), n=1, cutoff=0.6)
  return f'did you mean "{lowered[close[0]]}"? ' if close else ""


class Registry(collections.abc.Mapping):
  """The parts of one kind: built-ins by name, user parts by import path.

  Attributes:
    kind: what the parts are ("statistic", "evaluator", ...), for messages.
    field: the config field that names them ("tracking.kernels entry", ...), for messages.
    check: optional `check(obj, spec)` run on a user part when it is resolved; raises
      PartError (one line) when `obj` breaks the kind's contract.
  """

  def __init__(self, kind: str, field: str, builtins: Mapping[str, Any],
               check: Callable[[Any, str], Any] | None = None):
    self.kind, self.field, self.check = kind, field, check
    self._builtins = dict(builtins)
    self._user: dict[str, Any] = {}

  def __getitem__(self, name: str) -> Any:
    if name in self._builtins:
      return self._builtins[name]
    if name in self._user:
      return self._user[name]
    raise KeyError(name)

  def __iter__(self) -> Iterator[str]:
    return iter(self._builtins)  # the built-ins (what "choose from" lists)

  def __len__(self) -> int:
    return len(self._builtins)

  def __contains__(self, name: object) -> bool:
    return name in self._builtins or name in self._user

  @property
  def builtins(self) -> tuple[str, ...]:
    return tuple(self._builtins)

  def register(self, name: str, part: Any) -> None:
    """Adds a part under `name` (a user part resolved elsewhere, or one defined in Python)."""
    if name in self._builtins and self._builtins[name] is not part:
      raise PartError(f"{self.kind} {name!r} is a built-in; give yours another name")
    self._user[name] = part

  def get(self, spec: Any, base_dir: str | os.PathLike | None = None) -> Any:  # pylint: disable=arguments-renamed
    """The part `spec` names: a built-in, a registered part, or one found by import path.

    Raises:
      PartError (a ValueError): unknown name, with the choices and the import-path form; the
        import door's ConfigError for a path that does not import.
    """
    if isinstance(spec, str) and spec in self:
      return self[spec]
    if not is_import_path(spec):
      raise PartError(f"unknown {self.kind} {spec!r}; {did_you_mean(spec, self._builtins)}"
                      f"set {self.field} to one of {', '.join(map(repr, self._builtins))}, or "
                      f"name your own as 'package.module:Name' or 'path/to/file.py:Name' "
                      "(docs/parts.md)")
    from regularity_jax.training import parts  # pylint: disable=g-import-not-at-top
    obj, _, _ = parts.import_attr(spec, base_dir, what=self.kind, field=self.field)
    if self.check is not None:
      obj = self.check(obj, spec) or obj
    self._user[spec] = obj
    return obj


class _Strict:
  """A read-only view of a ConfigDict that raises on any field outside `allowed` (tests)."""

  def __init__(self, config, allowed: tuple[str, ...]):
    object.__setattr__(self, "_config", config)
    object.__setattr__(self, "_allowed", allowed)

  def __getattr__(self, name):
    if name.startswith("__"):
      raise AttributeError(name)
    if name not in self._allowed:
      raise AssertionError(f"a part read config field {name!r}, outside its block and "
                           f"the run-wide fields {self._allowed}")
    return self._config[name]

  __getitem__ = __getattr__

  def get(self, name, default=None):
    return self.__getattr__(name) if name in self._config else default

  def __contains__(self, name):
    return name in self._allowed and name in self._config


def block_view(config, *blocks: str, strict: bool = False):
  """A ConfigDict holding only `blocks` (top-level fields of `config`) and `RUN_WIDE`, each a
  copy: what a part is built from. `strict`: a view that raises AssertionError on any other
  field (the tests' check that a part reads nothing else)."""
  import ml_collections  # pylint: disable=g-import-not-at-top  (the metrics need only jax)
  fields = tuple(dict.fromkeys((*blocks, *RUN_WIDE)))
  out = ml_collections.ConfigDict()
  for name in fields:
    if name in config:
      value = config[name]
      if isinstance(value, ml_collections.ConfigDict):
        value = ml_collections.ConfigDict(value.to_dict())
      out[name] = value
  return _Strict(out, fields) if strict else out


def phase_order(parts, phases: tuple[str, ...], registry_order: tuple[str, ...] = ()) -> list:
  """`parts` sorted by their declared `phase` (an entry of `phases`), then by the order of
  their names in `registry_order` (user parts after the built-ins of their phase)."""
  def key(part):
    phase = getattr(part, "phase", None)
    if phase not in phases:
      raise PartError(f"{type(part).__name__} declares phase {phase!r}; declare one of {phases}")
    name = getattr(part, "name", "")
    rank = registry_order.index(name) if name in registry_order else len(registry_order)
    return phases.index(phase), rank
  return sorted(parts, key=key)
