"""Flag parsing of the entry points: every mistake on the command line is one line and exit 2.

`app.run(main, flags_parser=cli.parse_flags)`. ml_collections reports an unknown
`--config.<field>` as an AttributeError deep in a traceback and a missing config file as an
OSError; absl reports bad values in two lines. Here each becomes `error: <problem>; <fix>`.
Imports no JAX, so that --help and mistakes answer at once.
"""

from __future__ import annotations

import difflib
import glob
import os
import re
import sys

from absl import flags

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config_files() -> list[str]:
  found = glob.glob(os.path.join(_ROOT, "experiments", "configs", "*.py"))
  found += glob.glob(os.path.join(_ROOT, "experiments", "studies", "*", "config.py"))
  found += glob.glob(os.path.join(_ROOT, "regularity_jax", "configs", "*.py"))
  found += glob.glob(os.path.join(_ROOT, "regularity_jax", "studies", "*", "config.py"))
  return sorted(os.path.relpath(p, _ROOT) for p in found if not p.endswith("__init__.py"))


def _config_arg(argv) -> str | None:
  for arg in argv:
    if arg.startswith("--config="):
      return arg.split("=", 1)[1].split(":", 1)[0]
  return None


def _unknown_field(error: Exception) -> str | None:
  text = str(error.args[0]) if error.args else str(error)
  text = text.strip("'\"").replace("\\n", "\n").replace("\\'", "'")
  name = re.match(r"'?([A-Za-z_][\w]*)'?", text)
  if name is None:
    return None
  hint = re.search(r'Did you mean "([^"]+)"', text)
  suggestion = f'did you mean "{hint.group(1)}"? ' if hint else ""
  return (f"unknown config field {name.group(1)!r} on the command line: {suggestion}the "
          "fields are those of the config file (training fields: "
          "regularity_jax/training/config.py)")


def explain(error: Exception, argv) -> str:
  """One line for an error raised while parsing `argv`."""
  config = _config_arg(argv)
  if isinstance(error, OSError) or "Failed loading config file" in str(error):
    close = difflib.get_close_matches(config or "", _config_files(), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    why = ("no such file" if config and not os.path.exists(config)
           else " ".join(str(error).split())[:160])
    return (f"cannot load the config file {config!r} ({why}); {hint}pass --config=PATH[:ARG] of a config file, e.g. "
            "experiments/configs/quickstart.py")
  if isinstance(error, AttributeError) and "has no attribute 'get_config'" in str(error):
    return (f"the config file {config!r} defines no get_config(); define get_config() "
            "returning regularity_jax.training.default_config() with fields overridden (as "
            "experiments/configs/quickstart.py does)")
  if isinstance(error, (AttributeError, KeyError)):
    message = _unknown_field(error)
    if message:
      return message
  if isinstance(error, flags.Error):
    text = str(error)
    if "Traceback (most recent call last)" in text:  # the config file's get_config raised
      cause = [l for l in text.splitlines() if l.strip()][-1].strip()
      return (f"the config file {config!r} raised {cause[:200]} (its get_config with the "
              "argument after ':'); check --config=PATH[:ARG]")
    return f"{' '.join(text.split())}; see --helpfull for the flags"
  first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
  return (f"the command line could not be parsed ({type(error).__name__}: {first}); check "
          f"--config={config} and the --config.<field>=<value> overrides")


def _guard_streams() -> None:
  """A closed stdout or stderr (`| head`, `2>&-`) is harmless (entrypoints.guard_streams)."""
  from regularity_jax import entrypoints  # pylint: disable=g-import-not-at-top  # no JAX
  entrypoints.guard_streams()


def parse_flags(argv):
  """absl's flags_parser: parses `argv`, or prints one line and exits with 2."""
  _guard_streams()
  try:
    rest = flags.FLAGS(argv)
    if "config" in flags.FLAGS:
      # A config file that failed to load yields a placeholder that raises on first use.
      getattr(flags.FLAGS["config"].value, "keys", None)
    return rest
  except Exception as e:  # pylint: disable=broad-except  # every parsing failure: one line
    print(f"error: {explain(e, argv[1:])}", file=sys.stderr, flush=True)
    sys.exit(2)
