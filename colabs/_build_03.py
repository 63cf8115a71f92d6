"""Writes colabs/03_turnover.ipynb (unexecuted); run from the repository root:

  .venv/bin/python colabs/_build_03.py && .venv/bin/python -m pytest tests/test_colabs.py -q -k 03

The notebook calls library functions (regularity_jax.training, regularity_jax.sweeps) and the
turnover_labels study's measurement helpers (regularity_jax/studies/turnover_labels/study.py).
"""

import pathlib

import sys

import nbformat
from nbformat import v4

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _colab_cell import INSTALL_CELL  # pylint: disable=g-import-not-at-top,wrong-import-position

CELLS = [
    ("md", """# Memorization through turn-over dropout

Each training example *i* owns a fixed dropout mask *m_i* derived from its id and only ever
trains the sub-network *m_i*; the flipped sub-network *1 - m_i* never saw it (Kobayashi et al.
2020; Liu, Lin, Jaggi 2021). One run then scores every example's memorization,
L(i; 1 - m_i) - L(i; m_i) (loss form) and correct(i; m_i) - correct(i; 1 - m_i) (0/1 form).

Here: train with 20% random labels, see that the randomized examples are the memorized ones
(histogram, AUROC), and look at the most and least memorized examples. The studies behind this
(`python -m regularity_jax.study --config=regularity_jax/studies/turnover_labels/config.py:cpu ...`) run the
same functions at more noise levels; their reports are in `experiments/results/turnover/`.

**Run it**: locally, `pip install -e '.[notebooks]'` from the repository root, then open this notebook (from any folder). In Colab, set `REPO_URL` in the first code cell to this repository's git address and run all."""),
    ("code", INSTALL_CELL),
    ("code", """import os, pathlib, tempfile
import numpy as np
from IPython.display import display, Markdown

from regularity_jax.studies.turnover_labels import config as labels_config
from regularity_jax.studies.turnover_labels import study as labels_study
from regularity_jax.sweeps import figures, subruns
from regularity_jax.sweeps.report import markdown_table
from regularity_jax.training import load_data, train_and_evaluate
%matplotlib inline

# MNIST from local IDX files when they are there (../shared/data beside this repository), else
# through tensorflow-datasets when it can provide it (Colab downloads it), else MNIST-1D,
# which is generated locally.
import regularity_jax
from regularity_jax.data import DataError, TfdsOptions, load_dataset
MNIST_DIR = pathlib.Path(regularity_jax.__file__).resolve().parents[2] / "shared" / "data" / "mnist"
sizes = {"train_subset": 2000, "test_subset": 500}
if (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
  data = {"dataset": "mnist", "data_dir": str(MNIST_DIR), **sizes}
else:
  try:
    load_dataset("mnist", tfds_options=TfdsOptions())
    data = {"dataset": "mnist", "data_dir": "", **sizes}
  except DataError as e:
    print(f"MNIST not available ({str(e)[:120]}...); using MNIST-1D")
    data = {"dataset": "mnist1d", "data_dir": "", **sizes}
print(data)"""),
    ("md", """## Train with turn-over dropout and 20% random labels
The study's smoke `base` config (an MLP with turn-over dropout p = 0.5 after its hidden layer),
with a few overrides: `derive_config` takes the same dotted names as `--config.<field>`."""),
    ("code", """config = subruns.derive_config(labels_config.get_config("smoke").base, {
    **data, "model_kwargs.hidden": (256,), "num_epochs": 8, "checkpoint_every": 8,
    "corruption.kind": "random_labels", "corruption.fraction": 0.2, "corruption.seed": 0})
workdir = os.path.join(tempfile.mkdtemp(), "turnover")
result = train_and_evaluate(config, workdir)
scores = result.scores
final = result.final
print(f"test accuracy {final['test_accuracy']:.3f}; train accuracy: own sub-networks "
      f"{final['train_accuracy']:.3f}, full network {final['eval_train_accuracy']:.3f}")"""),
    ("md", """## Memorization of clean vs randomized examples
`random_labels` redraws the label from all classes, so about a tenth of the randomized examples
keep their true label; "mislabeled" means the label actually changed."""),
    ("code", """wrong = labels_study.mislabeled(scores)
fig, axes = figures.subplots(2, width=4.2)
figures.group_histogram(axes[0], scores["train/memorization_loss"],
                        {"clean": ~wrong, "mislabeled": wrong}, xlabel="memorization (loss form)")
figures.group_histogram(axes[1], scores["train/memorization_mean"],
                        {"clean": ~wrong, "mislabeled": wrong}, bins=20,
                        xlabel="memorization (0/1 form, mean over evaluations)")
aurocs = labels_study.memorization_aurocs(scores)
display(Markdown(markdown_table([aurocs], formats={k: ".3f" for k in aurocs})))
# MNIST: well above chance; MNIST-1D, which this small MLP barely learns in 8 epochs: above it
assert aurocs["auroc_memorization_loss"] > (0.6 if data["dataset"] == "mnist" else 0.5)"""),
    ("md", """## Fitting speed
Fraction of the clean and the mislabeled examples first classified correctly (presentation
stream: the example's own sub-network, in its training step) by each epoch."""),
    ("code", """epochs = config.num_epochs
groups = labels_study.difficulty_groups(scores)
fig, axes = figures.subplots(1, width=4.5)
figures.curves(axes[0], np.arange(1, epochs + 1),
               {name: labels_study.learned_by_epoch(scores["train/first_learned"][m], epochs)
                for name, m in groups.items()},
               xlabel="epoch", ylabel="fraction first learned")
display(Markdown(markdown_table(labels_study.fitting_rows(scores, epochs, groups))))"""),
    ("md", """## The most and least memorized training examples
Title: the label trained on (with the original label when it was changed) and the memorization."""),
    ("code", """dataset = load_data(config)  # the data the run saw (same corrupted labels)
assert np.array_equal(dataset.train.ids, scores["train/example_id"])
memorization = scores["train/memorization_loss"]
order = np.argsort(-memorization)

def titles(rows):
  return [f"y={scores['train/label'][r]}" +
          (f" (was {scores['train/original_label'][r]})" if wrong[r] else "") +
          f"\\nm={memorization[r]:.1f}" for r in rows]

for name, rows in (("most", order[:16]), ("least", order[-16:])):
  figures.image_grid(dataset.train.images[rows], titles(rows),
                     size=1.3, suptitle=f"16 {name} memorized training examples")
print(f"mislabeled among the 100 most memorized: {wrong[order[:100]].mean():.0%} "
      f"(overall {wrong.mean():.0%})")"""),
]


def build() -> nbformat.NotebookNode:
  nb = v4.new_notebook()
  nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                               "language": "python"}
  nb.cells = [v4.new_markdown_cell(src) if kind == "md" else v4.new_code_cell(src)
              for kind, src in CELLS]
  return nb


if __name__ == "__main__":
  path = pathlib.Path(__file__).resolve().parent / "03_turnover.ipynb"
  nbformat.write(build(), path)
  print(path)
