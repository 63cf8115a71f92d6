"""The PNG plots of a run: learning curves, forgetting histogram, margins, data map.

Each function takes plain NumPy data (metrics records or the scores.npz dict), writes one PNG
and returns its path. matplotlib uses the non-interactive Agg backend.
"""

from __future__ import annotations

import pathlib
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np


def _save(fig, path) -> pathlib.Path:
  path = pathlib.Path(path)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def learning_curves(records: Sequence[Mapping[str, Any]], path) -> pathlib.Path:
  """Loss and accuracy per epoch: presentation stream (train) and evaluations."""
  fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
  epochs = [r["epoch"] for r in records]
  for key, label in (("train_loss", "train (presentations)"), ("eval_train_loss", "train (eval)"),
                     ("test_loss", "test (eval)")):
    pts = [(r["epoch"], r[key]) for r in records if key in r]
    if pts:
      ax_loss.plot(*zip(*pts), marker=".", label=label)
    acc_key = key.replace("loss", "accuracy")
    pts = [(r["epoch"], r[acc_key]) for r in records if acc_key in r]
    if pts:
      ax_acc.plot(*zip(*pts), marker=".", label=label)
  ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
  ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.01))
  for ax in (ax_loss, ax_acc):
    ax.grid(alpha=0.3)
    ax.legend()
    if epochs:
      ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
  return _save(fig, path)


def forgetting_histogram(scores: Mapping[str, np.ndarray], path) -> pathlib.Path:
  """Forgetting events of training examples and mal-generalizing events of test examples;
  never-learned examples get their own bar, as Toneva et al. rank them most forgotten."""
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  for ax, split, what in ((axes[0], "train", "forgetting events (presentations)"),
                          (axes[1], "test", "mal-generalizing events (evaluations)")):
    key = f"{split}/forgetting_events"
    if key not in scores:
      ax.set_visible(False)
      continue
    events = scores[key]
    never = scores[f"{split}/never_learned"]
    seen = scores[f"{split}/observations"] > 0
    counts = np.bincount(events[seen & ~never]) if np.any(seen & ~never) else np.zeros(1)
    xs = np.arange(len(counts))
    ax.bar(xs, counts, color="tab:blue", label="learned at least once")
    ax.bar([len(counts) + 0.5], [np.sum(never)], color="tab:red", label="never learned")
    ax.set(xlabel=what, ylabel="examples", yscale="log" if counts.max() > 50 else "linear",
           title=f"{split}: {np.mean(scores[f'{split}/unforgettable'][seen]):.1%} unforgettable"
           if np.any(seen) else split)
    ax.legend()
  return _save(fig, path)


def margin_distributions(scores: Mapping[str, np.ndarray], path) -> pathlib.Path:
  """Histograms of AUM (presentation stream) and of the final eval-mode margins."""
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  panels = ((axes[0], [("train/aum", "train AUM (presentations)")], "AUM"),
            (axes[1], [("train/eval_last_margin", "train"), ("test/last_margin", "test")],
             "logit margin at the last evaluation"))
  for ax, series, xlabel in panels:
    for key, label in series:
      if key in scores:
        values = scores[key][np.isfinite(scores[key])]
        ax.hist(values, bins=60, alpha=0.6, label=label, density=True)
    ax.axvline(0, color="k", lw=0.8)
    ax.set(xlabel=xlabel, ylabel="density")
    ax.legend()
  return _save(fig, path)


def data_map(scores: Mapping[str, np.ndarray], path, split: str = "train") -> pathlib.Path:
  """Swayamdipta et al.'s data map: confidence vs variability, colored by correctness.

  Corrupted examples, when the run had any, are outlined in red."""
  fig, ax = plt.subplots(figsize=(5.5, 4.8))
  conf, var = scores[f"{split}/confidence"], scores[f"{split}/variability"]
  corr = scores[f"{split}/correctness"]
  ok = np.isfinite(conf)
  sc = ax.scatter(var[ok], conf[ok], c=corr[ok], s=4, cmap="viridis", vmin=0, vmax=1)
  corrupted = scores.get(f"{split}/corrupted")
  if corrupted is not None and np.any(corrupted & ok):
    sel = corrupted & ok
    ax.scatter(var[sel], conf[sel], s=10, facecolors="none", edgecolors="r", lw=0.5,
               label="corrupted")
    ax.legend(loc="lower right")
  fig.colorbar(sc, ax=ax, label="correctness")
  ax.set(xlabel="variability", ylabel="confidence", title=f"data map ({split}, presentations)")
  return _save(fig, path)


def margin_distribution_over_time(records: Sequence[Mapping[str, Any]], path) -> pathlib.Path:
  """The training margin distribution (quantile curve of the normalized margins) at every
  evaluation, colored by epoch, and its area (margin AUC) with the training fraction used."""
  evals = [r for r in records if "train_margin_quantiles" in r]
  fig, (ax_q, ax_auc) = plt.subplots(1, 2, figsize=(10, 3.8))
  cmap = plt.get_cmap("viridis")
  for j, r in enumerate(evals):
    q = np.asarray(r["train_margin_quantiles"])
    xs = (np.arange(len(q)) + 0.5) / len(q)
    ax_q.plot(xs, q, color=cmap(j / max(len(evals) - 1, 1)), lw=1.2,
              label=f"epoch {r['epoch']}" if j in (0, len(evals) - 1) else None)
  ax_q.axhline(0, color="k", lw=0.8)
  ax_q.set(xlabel="fraction of training examples (sorted by margin)",
           ylabel="normalized margin", title="training margin distribution")
  if evals:
    ax_q.legend()
    epochs = [r["epoch"] for r in evals]
    ax_auc.plot(epochs, [r["margin_auc"] for r in evals], marker=".", label="train margin AUC")
    if "test_margin_auc" in evals[0]:
      ax_auc.plot(epochs, [r["test_margin_auc"] for r in evals], marker=".", label="test")
    ax_auc.set(xlabel="epoch", ylabel="margin AUC (mean normalized margin)")
    frac = [(r["epoch"], r["train_fraction_used"]) for r in records if "train_fraction_used" in r]
    if frac and min(f for _, f in frac) < 1.0:
      ax_frac = ax_auc.twinx()
      ax_frac.step(*zip(*frac), where="post", color="tab:red", alpha=0.6)
      ax_frac.set_ylabel("training fraction used", color="tab:red")
    ax_auc.legend(loc="upper left")
  return _save(fig, path)


def _plots(records, scores) -> list[tuple[str, Any]]:
  """(file name, writer(path)) of every plot a run with these records and scores has."""
  out = [("learning_curves.png", lambda path: learning_curves(records, path))]
  if "train/forgetting_events" in scores:
    out.append(("forgetting_histogram.png", lambda path: forgetting_histogram(scores, path)))
  if "train/aum" in scores or "test/last_margin" in scores:
    out.append(("margin_distributions.png", lambda path: margin_distributions(scores, path)))
  if "train/confidence" in scores:
    out.append(("data_map.png", lambda path: data_map(scores, path)))
  if any("train_margin_quantiles" in r for r in records):
    out.append(("margin_distribution_over_time.png",
                lambda path: margin_distribution_over_time(records, path)))
  return out


def plot_names(records, scores) -> list[str]:
  """The file names `write_all` writes for these records and scores."""
  return [name for name, _ in _plots(records, scores)]


def write_all(records, scores, plots_dir, only=None) -> list[pathlib.Path]:
  """Writes every plot of a run into `plots_dir` (`only`: those of these file names); returns
  the paths."""
  plots_dir = pathlib.Path(plots_dir)
  plots_dir.mkdir(parents=True, exist_ok=True)
  return [write(plots_dir / name) for name, write in _plots(records, scores)
          if only is None or name in only]
