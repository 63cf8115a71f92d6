"""Writes colabs/06_your_model.ipynb (unexecuted); run from the repository root:

  .venv/bin/python colabs/_build_06.py && .venv/bin/python -m pytest tests/test_colabs.py -q -k 06

A model defined in a notebook cell, trained through the engine with turn-over dropout and the
report (docs/your_model.md). About a minute on 2 CPU cores.
"""

import pathlib

import sys

import nbformat
from nbformat import v4

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _colab_cell import INSTALL_CELL  # pylint: disable=g-import-not-at-top,wrong-import-position

CELLS = [
    ("md", """# Your model, from a notebook cell

Any Flax NNX model goes through the engine: forgetting, AUM, turn-over dropout, normalized
margins, pruning, seeds, resume and the report, as for the built-ins (docs/your_model.md).
From Python a class defined in a cell is passed as `train_and_evaluate(config, workdir,
model=MyNet)`; from the command line a model is named `--config.model=path/to/file.py:MyNet`
or `package.module:MyNet`.

**Run it**: locally, `pip install -e '.[notebooks]'` from the repository root, then open this notebook (from any folder). In Colab, set `REPO_URL` in the first code cell to this repository's git address and run all."""),
    ("code", INSTALL_CELL),
    ("code", """import json, math, os, tempfile
import ml_collections
import numpy as np
from flax import nnx
from IPython.display import display, HTML, Image

from regularity_jax.configs import quickstart
from regularity_jax.models import TurnOverSite
from regularity_jax.training import train_and_evaluate"""),
    ("md", """## The model
The contract: `__init__(self, *, rngs, ...)` (`num_classes`, `example_shape` and `dtype` are
passed when named) and `__call__(self, x)` returning logits. One `TurnOverSite` layer marks
where the per-example turn-over masks act; `__call__` needs no extra argument for it. The
margin normalizer reads the final layer (the one `[D, num_classes]` kernel) and folds the
BatchNorm into `hidden` (the only kernel with as many outputs) from the layers themselves."""),
    ("code", """class MyNet(nnx.Module):

  def __init__(self, *, num_classes, example_shape, rngs):
    self.hidden = nnx.Linear(math.prod(example_shape), 128, rngs=rngs)
    self.bn = nnx.BatchNorm(128, rngs=rngs)
    self.site = TurnOverSite("hidden")
    self.head = nnx.Linear(128, num_classes, rngs=rngs)

  def __call__(self, x):
    x = nnx.relu(self.bn(self.hidden(x.reshape(x.shape[0], -1))))
    return self.head(self.site(x))"""),
    ("md", """## Train it with turn-over dropout
The quickstart's smoke config (MNIST-1D, generated locally, 4 epochs), on 2,000 examples, with
turn-over on and the report. The run's config.json records the class by its qualified name and
the sha256 of its source: rerunning this cell resumes the run, and after an edit of `MyNet` the
rerun is refused in one line (or goes on with `config.allow_changed_model_code = True`,
recorded in the run directory)."""),
    ("code", """config = quickstart.get_config("smoke")
config.train_subset, config.test_subset = 2000, 500
config.model_kwargs = ml_collections.ConfigDict()  # the quickstart's are its mlp's
config.turnover.enabled = True
config.report = True
config.progress_bar = False
workdir = os.path.join(tempfile.mkdtemp(), "my_net")
result = train_and_evaluate(config, workdir, model=MyNet)
final = result.final
print(f"test accuracy {final['test_accuracy']:.3f}, unforgettable "
      f"{final['train_unforgettable_fraction']:.1%}")
saved = json.load(open(os.path.join(workdir, "config.json")))
print("model:", saved["model"], "| source sha256:", saved["model_source"]["sha256"][:12])"""),
    ("md", """## Its scores
Forgetting events, AUM, turn-over memorization and the normalized margin of every training
example, from the run's `scores.npz`."""),
    ("code", """scores = result.scores
memorization = scores["train/memorization_loss"]
print("forgetting events: mean", scores["train/forgetting_events"].mean().round(3),
      "| AUM: mean", scores["train/aum"].mean().round(3),
      "| memorization (loss form): mean", memorization.mean().round(3),
      "| normalized margin: median", np.median(scores["train/normalized_margin"]).round(3))
most = np.argsort(-memorization)[:5]
print("the most memorized training examples:", most.tolist(), memorization[most].round(2).tolist())
assert np.any(memorization != 0) and np.all(np.isfinite(scores["train/normalized_margin"]))"""),
    ("md", """## The report
`report.html` is one self-contained page (open it in a browser); its grids are also PNGs under
`plots/grids/`."""),
    ("code", """page = os.path.join(workdir, "report.html")
print("the page:", page, f"({os.path.getsize(page) / 1e3:.0f} kB)")
grids = os.path.join(workdir, "plots", "grids")
print(sorted(os.listdir(grids)))
display(Image(filename=os.path.join(grids, "train_forgetting.png")))
from regularity_jax import report
report.show(workdir)  # the page itself, in the notebook"""),
]


def build() -> nbformat.NotebookNode:
  nb = v4.new_notebook()
  nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                               "name": "python3"}
  for kind, source in CELLS:
    nb.cells.append(v4.new_markdown_cell(source) if kind == "md" else v4.new_code_cell(source))
  return nb


if __name__ == "__main__":
  path = pathlib.Path(__file__).resolve().parent / "06_your_model.ipynb"
  nbformat.write(build(), path)
  print(path)
