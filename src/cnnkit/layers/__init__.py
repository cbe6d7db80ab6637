"""cnnkit's layer catalog: every building block the article names, registered by name in ``LAYERS``.

torch layers that already are the exact layer (Conv2d, MaxPool2d, BatchNorm2d, ReLU, Dropout, ...) are
registered under their snake_case names (``conv2d``, ``max_pool2d``, ...) and not re-implemented;
the rest are ours. Functional forms live in :mod:`cnnkit.layers.functional`.
"""

from __future__ import annotations

from . import _torch as _torch  # registers torch's layers
from . import boxes as boxes
from . import functional as functional
from . import losses as losses
from . import penalties as penalties
from ._registry import LAYERS as LAYERS
from ._registry import register_layer as register_layer
from ._registry import snake_case as snake_case
from .activations import AbsTanh as AbsTanh
from .activations import ScaledTanh as ScaledTanh
from .attention_pool import AttentionPool as AttentionPool
from .blur_pool import BlurPool2d as BlurPool2d
from .blur_pool import MaxBlurPool2d as MaxBlurPool2d
from .constraints import MaxNorm as MaxNorm
from .constraints import apply_max_norm as apply_max_norm
from .conv import DepthwiseSeparableConv1d as DepthwiseSeparableConv1d
from .conv import DepthwiseSeparableConv2d as DepthwiseSeparableConv2d
from .conv import MultiDilationConv2d as MultiDilationConv2d
from .conv import UpsampleConv2d as UpsampleConv2d
from .drop_connect import DropConnectConv2d as DropConnectConv2d
from .drop_connect import DropConnectLinear as DropConnectLinear
from .global_pool import ChannelMaxPool2d as ChannelMaxPool2d
from .global_pool import GlobalAvgPool2d as GlobalAvgPool2d
from .global_pool import GlobalMaxPool2d as GlobalMaxPool2d
from .locally_connected import LocallyConnected1d as LocallyConnected1d
from .locally_connected import LocallyConnected2d as LocallyConnected2d
from .losses import LOSSES as LOSSES
from .masked_pool import MaskedGlobalAvgPool1d as MaskedGlobalAvgPool1d
from .masked_pool import masked_global_avg_pool1d as masked_global_avg_pool1d
from .nms import batched_nms as batched_nms
from .nms import nms as nms
from .norm import GlobalResponseNorm as GlobalResponseNorm
from .penalties import elastic_net_penalty as elastic_net_penalty
from .penalties import l1_penalty as l1_penalty
from .penalties import l2_penalty as l2_penalty
from .pooling import LpPool2d as LpPool2d
from .pooling import MixedPool2d as MixedPool2d
from .pooling import SoftmaxPool2d as SoftmaxPool2d
from .roi_align import RoIAlign as RoIAlign
from .roi_pool import RoIPool as RoIPool
from .shape import conv_output_size as conv_output_size
from .spp import SpatialPyramidPool2d as SpatialPyramidPool2d
from .stochastic_pool import StochasticPool2d as StochasticPool2d
from .unpool import Unpool2d as Unpool2d

__all__ = [
    "LAYERS", "LOSSES", "AbsTanh", "AttentionPool", "BlurPool2d", "ChannelMaxPool2d", "DepthwiseSeparableConv1d",
    "DepthwiseSeparableConv2d", "DropConnectConv2d", "DropConnectLinear", "GlobalAvgPool2d", "GlobalMaxPool2d", "MaskedGlobalAvgPool1d", "masked_global_avg_pool1d",
    "GlobalResponseNorm", "LocallyConnected1d", "LocallyConnected2d", "LpPool2d", "MaxBlurPool2d", "MaxNorm",
    "MixedPool2d", "MultiDilationConv2d", "RoIAlign", "RoIPool", "ScaledTanh", "SoftmaxPool2d", "SpatialPyramidPool2d",
    "StochasticPool2d", "Unpool2d", "UpsampleConv2d", "apply_max_norm", "batched_nms", "boxes", "conv_output_size",
    "elastic_net_penalty", "functional", "l1_penalty", "l2_penalty", "losses", "nms", "penalties", "register_layer", "snake_case",
]
