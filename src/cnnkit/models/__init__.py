"""The model zoo, model specs and the model builder.

Importing this package registers every model in :data:`MODELS` (the zoo modules register on import).
"""

from __future__ import annotations

# Zoo modules: imported for their @register_model side effect.
from . import airbench as airbench
from . import alexnet as alexnet
from . import alphazero as alphazero
from . import blondie24 as blondie24
from . import c3d as c3d
from . import charcnn as charcnn
from . import cnn_lstm as cnn_lstm
from . import convnextv2 as convnextv2
from . import dcgan as dcgan
from . import detection as detection
from . import dqn as dqn
from . import fcmae as fcmae
from . import fcn as fcn
from . import fcn1d as fcn1d
from . import googlenet as googlenet
from . import inception_time as inception_time
from . import lenet as lenet
from . import minatar_dqn as minatar_dqn
from . import mnist1d_cnn as mnist1d_cnn
from . import mobilenet as mobilenet
from . import nin as nin
from . import resnet as resnet
from . import segnet as segnet
from . import single_frame as single_frame
from . import srcnn as srcnn
from . import tcn as tcn
from . import tdnn as tdnn
from . import textcnn as textcnn
from . import two_stream as two_stream
from . import unet as unet
from . import vgg as vgg
from ._registry import MODELS as MODELS
from ._registry import create_model as create_model
from ._registry import list_models as list_models
from ._registry import model_info as model_info
from ._registry import register_model as register_model
from .build import build_model as build_model
from .build import model_config_for_json as model_config_for_json
from .spec import SpecModel as SpecModel
from .spec import build_from_spec as build_from_spec
from .spec import load_spec as load_spec

__all__ = [
    "MODELS",
    "SpecModel",
    "build_from_spec",
    "build_model",
    "create_model",
    "list_models",
    "load_spec",
    "model_config_for_json",
    "model_info",
    "register_model",
]
