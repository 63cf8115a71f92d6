"""Slow, obvious NumPy references for the metric kernels: a Python loop over every row.

Written from the tables of docs/definitions.md, independently of the JAX code, in float64.
"""

import numpy as np


def _softmax(z):
  z = np.asarray(z, np.float64)
  e = np.exp(z - z.max())
  return e / e.sum()


def reference_stats(num_examples, stream):
  """stream: list of (ids i32[B], logits f32[B, C], labels i32[B], mask bool[B] | None).

  An unmasked row counts when its id is in [0, num_examples) and no earlier row of the same
  update counted that id; every other unmasked row is dropped (docs/definitions.md, "Rules every kernel follows").

  Returns a dict of every summary key -> np.ndarray[num_examples], and "dropped" (an int).
  """
  history = [[] for _ in range(num_examples)]  # per example: list of (correct, margin, p_true)
  dropped = 0
  for ids, logits, labels, mask in stream:
    counted = set()
    for row in range(len(ids)):
      if mask is not None and not mask[row]:
        continue
      i = int(ids[row])
      if not 0 <= i < num_examples or i in counted:
        dropped += 1
        continue
      counted.add(i)
      z = np.asarray(logits[row], np.float64)
      y = int(labels[row])
      correct = int(np.argmax(z)) == y
      others = [z[j] for j in range(len(z)) if j != y]
      margin = z[y] - max(others)
      history[int(ids[row])].append((correct, margin, _softmax(z)[y], z, y))

  out = {k: [] for k in ("forgetting_events", "learning_events", "first_learned", "first_forgotten",
                         "unforgettable",
                         "never_learned", "observations", "cumulative_correct", "mean_correct",
                         "last_margin", "aum", "confidence", "variability", "correctness",
                         "last_loss", "mean_loss", "last_el2n", "mean_el2n")}
  for h in history:
    n = len(h)
    forgets = learns = 0
    first = first_forgot = -1
    prev = False  # the first observation's "previous" counts as wrong
    for t, (c, *_) in enumerate(h):
      if prev and not c:
        forgets += 1
        if first_forgot < 0:
          first_forgot = t
      if c and not prev:
        learns += 1
      if c and first < 0:
        first = t
      prev = c
    corrects = [c for c, *_ in h]
    margins = [m for _, m, *_ in h]
    probs = [p for _, _, p, *_ in h]
    losses = [-np.log(_softmax(z)[y]) for *_, z, y in h]
    el2ns = [reference_el2n([z], [y])[0] for *_, z, y in h]
    out["forgetting_events"].append(forgets)
    out["learning_events"].append(learns)
    out["first_learned"].append(first)
    out["first_forgotten"].append(first_forgot)
    out["unforgettable"].append(first >= 0 and forgets == 0)
    out["never_learned"].append(n > 0 and first < 0)
    out["observations"].append(n)
    out["cumulative_correct"].append(sum(corrects))
    out["mean_correct"].append(np.mean(corrects) if n else np.nan)
    out["last_margin"].append(margins[-1] if n else np.nan)
    out["aum"].append(np.mean(margins) if n else np.nan)
    out["confidence"].append(np.mean(probs) if n else np.nan)
    out["variability"].append(np.std(probs) if n else np.nan)
    out["correctness"].append(np.mean(corrects) if n else np.nan)
    out["last_loss"].append(losses[-1] if n else np.nan)
    out["mean_loss"].append(np.mean(losses) if n else np.nan)
    out["last_el2n"].append(el2ns[-1] if n else np.nan)
    out["mean_el2n"].append(np.mean(el2ns) if n else np.nan)
  out = {k: np.asarray(v) for k, v in out.items()}
  out["dropped"] = np.int32(dropped)
  return out


def reference_el2n(logits, labels):
  out = []
  for z, y in zip(logits, labels):
    onehot = np.zeros(len(z))
    onehot[y] = 1.0
    out.append(np.sqrt(np.sum((_softmax(z) - onehot) ** 2)))
  return np.asarray(out)
