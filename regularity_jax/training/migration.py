"""Old config spellings read as today's (docs/migration.md lists each, old -> new).

`translate(config)` rewrites a ConfigDict in place before it is validated and recorded, and
`translate_saved(saved)` does the same to the config.json of an existing run directory, so
that a run made with an old spelling resumes under the new one (`runs.directory`). A spelling
that cannot be translated is refused in one line giving the new one (`training.config`).

  evaluators = ("splits", "turnover", "margins", "summaries")   the old default, which ran
      turnover and margins only where they applied and skipped them silently elsewhere
      -> ("splits", "summaries"): turn-over brings its `turnover` evaluator and the margins
      kernel its `margins` one (`training.evaluators.owned_evaluators`)
  evaluators naming "turnover" / "margins" where their owner is on -> left out (their owner
      brings them; the same evaluation)
"""

from __future__ import annotations

from typing import Any, Mapping

LEGACY_EVALUATORS = ("splits", "turnover", "margins", "summaries")
_OWNED = {"turnover": lambda c: bool(_get(c, "turnover.enabled", False)),
          "margins": lambda c: "margins" in tuple(_get(c, "tracking.kernels", ()))}


def _get(config: Mapping[str, Any], dotted: str, default=None):
  value = config
  for name in dotted.split("."):
    try:
      value = value[name]
    except (KeyError, TypeError, AttributeError):
      return default
  return value


def evaluators(config: Mapping[str, Any]) -> tuple[str, ...] | None:
  """Today's spelling of `config`'s evaluators, or None when it has none."""
  names = _get(config, "evaluators")
  if names is None:
    return None
  names = tuple(names)
  if names == LEGACY_EVALUATORS:
    names = tuple(n for n in names if n not in _OWNED)
  return tuple(n for n in names if not (n in _OWNED and _OWNED[n](config)))


def translate(config) -> None:
  """Rewrites the old spellings of a ConfigDict in place (module docstring)."""
  if not hasattr(config, "unlocked"):
    return
  new = evaluators(config)
  if new is not None and new != tuple(config.evaluators):
    with config.unlocked():
      config.evaluators = new


def translate_saved(saved: dict[str, Any]) -> dict[str, Any]:
  """A run directory's config.json (a dict) with the old spellings rewritten."""
  new = evaluators(saved)
  if new is None:
    return saved
  return {**saved, "evaluators": list(new)}
