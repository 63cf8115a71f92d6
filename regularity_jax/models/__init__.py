"""Flax NNX models by name (or any NNX model by the contract, `contract`), and a pure
functional view for jitted loops.

A leaf: imports only jax, flax and numpy.

  model = create_model("resnet18", num_classes=10, example_shape=(32, 32, 3),
                       rngs=nnx.Rngs(0))
  graphdef, params, model_state = split(model)
  logits, model_state = apply(graphdef, params, model_state, x, train=True,
                              key=key)
"""

from . import contract
from .contract import Classifier
from .contract import ContractError
from .functional import apply
from .functional import ModelDef
from .functional import count_params
from .functional import merge
from .functional import split
from .mlp import MLP
from . import norms
from .norms import network_norm
from .norms import normalized_margin
from .norms import NORMALIZERS
from .registry import create_model
from .registry import MODELS
from .registry import model_kwargs
from .resnet import ResNet18
from .small_cnn import SmallCNN
from .toneva_cnn import TonevaCNN
from .turnover import TurnOver
from .turnover import TurnOverSite
from . import turnover

__all__ = [
    "Classifier",
    "ContractError",
    "MLP",
    "ModelDef",
    "MODELS",
    "NORMALIZERS",
    "ResNet18",
    "SmallCNN",
    "TonevaCNN",
    "TurnOver",
    "TurnOverSite",
    "turnover",
    "apply",
    "contract",
    "count_params",
    "create_model",
    "merge",
    "model_kwargs",
    "network_norm",
    "normalized_margin",
    "norms",
    "split",
]
