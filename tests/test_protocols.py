"""Configs that name a paper's protocol match it setting by setting.

Each such config lists its protocol in its docstring (a "Protocol" block: field, value, source).
The test reads that block, checks that the config really has those values, and pins the values
that come from the papers against constants written here from the papers' code.
"""

import ast
import importlib
import re

import pytest

PROTOCOL_CONFIGS = ("mnist_toneva", "cifar10_resnet18", "turnover_influence", "noise_prioritization",
                    "margins_mnist", "margins_reduction", "margins_auc_generalization")
_LINE = re.compile(r"^  (\S+)\s+(.+?)\s{2,}(\S.*)$")

# From the papers' code: github.com/mtoneva/example_forgetting run_mnist.py / run_cifar.py and
# README, Kobayashi et al. 2020's demo (arXiv 2012.04207).
PINNED = {
    "mnist_toneva": {"model": "toneva_cnn", "model_kwargs.dropout": 0.0, "optimizer": "sgd",
                     "learning_rate": 0.01, "momentum": 0.5, "nesterov": False,
                     "weight_decay": 0.0, "schedule": "constant", "batch_size": 64,
                     "num_epochs": 200, "augment": False},
    "cifar10_resnet18": {"model": "resnet18", "optimizer": "sgd", "learning_rate": 0.1,
                         "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
                         "schedule": "multistep", "lr_milestones": (60, 120, 160),
                         "lr_gamma": 0.2, "batch_size": 128, "num_epochs": 200,
                         "augment": True, "crop_padding": 4},
    "turnover_influence": {"base.train_subset": 3000, "base.test_subset": 200,
                           "base.model_kwargs.hidden": (768, 768, 768),
                           "base.model_kwargs.use_bias": False, "base.turnover.rate": 0.5,
                           "base.learning_rate": 0.01, "base.momentum": 0.9,
                           "base.weight_decay": 0.01, "base.batch_size": 32,
                           "base.num_epochs": 40},
    "noise_prioritization": {"model_kwargs.dropout": 0.0, "prioritization_options.sb_beta": 1.0,
                             "prioritization_options.sb_history": 1024,
                             "prioritization_options.infobatch_ratio": 0.5,
                             "prioritization_options.infobatch_anneal": 0.875},
}


def protocol_block(module) -> dict[str, tuple[object, str]]:
  lines = module.__doc__.splitlines()
  start = next(i for i, l in enumerate(lines) if l.startswith("Protocol"))
  start = next(i for i in range(start, len(lines)) if lines[i].rstrip().endswith(":"))
  out = {}
  for line in lines[start + 1:]:
    if not line.startswith("  "):
      break
    m = _LINE.match(line)
    if m:
      out[m.group(1)] = (ast.literal_eval(m.group(2)), m.group(3))
  return out


def value_at(config, dotted):
  node = config
  for part in dotted.split("."):
    node = node[part]
  return node


def _module(name):
  """A main-job config (experiments/configs/) or a study's (experiments/studies/<name>/)."""
  try:
    return importlib.import_module(f"experiments.configs.{name}")
  except ModuleNotFoundError:
    return importlib.import_module(f"experiments.studies.{name}.config")


@pytest.mark.parametrize("name", PROTOCOL_CONFIGS)
def test_docstring_protocol_is_the_config(name):
  module = _module(name)
  block = protocol_block(module)
  assert len(block) >= 3, "the Protocol block lists too few settings"
  config = module.get_config()
  for field, (value, source) in block.items():
    assert source.strip(), field
    got = value_at(config, field)
    if isinstance(value, tuple):
      got = tuple(got)
    assert got == value, f"{name}: {field} is {got!r}, its docstring says {value!r}"


@pytest.mark.parametrize("name", sorted(PINNED))
def test_papers_settings(name):
  config = _module(name).get_config()
  block = protocol_block(_module(name))
  for field, value in PINNED[name].items():
    got = value_at(config, field)
    assert (tuple(got) if isinstance(value, tuple) else got) == value, (name, field)
    assert field in block, f"{name}: {field} comes from the paper but is not in its Protocol block"


def test_dropout_variant_is_the_only_difference():
  base = _module("mnist_toneva").get_config().to_dict()
  variant = _module("mnist_toneva_dropout").get_config().to_dict()
  assert variant["model_kwargs"] == {**base["model_kwargs"], "dropout": 0.5}
  variant["model_kwargs"] = base["model_kwargs"]
  assert variant == base


@pytest.mark.parametrize("name", ["removal_curves", "test_selection"])
def test_studies_derived_from_mnist_toneva_have_no_dropout(name):
  assert _module(name).get_config().base.model_kwargs.dropout == 0.0
