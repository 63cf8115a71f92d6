"""One-line warnings for people running the library: `warning: <message>` on stderr.

For things a run survives but its user should know (a damaged checkpoint set aside, a cut
metrics line). Standard library only. (regularity_jax.data, a leaf package, has its
own: `data.types.warn`.)
"""

import sys


def warn(message: str) -> None:
  """Prints `warning: <message>` as one line on stderr."""
  print(f"warning: {' '.join(message.split())}", file=sys.stderr, flush=True)
