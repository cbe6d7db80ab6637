"""Functional forms of cnnkit's layers: pure functions of tensors and hyperparameters.

Each layer module calls its function here, so the two cannot disagree (timm's pattern:
``drop_block_2d`` / ``DropBlock2d``).
"""

from __future__ import annotations

from .activations import abs_tanh as abs_tanh
from .activations import scaled_tanh as scaled_tanh
from .blur_pool import binomial_filter2d as binomial_filter2d
from .blur_pool import blur_pool2d as blur_pool2d
from .blur_pool import max_blur_pool2d as max_blur_pool2d
from .drop_connect import drop_connect as drop_connect
from .global_pool import channel_max_pool2d as channel_max_pool2d
from .global_pool import global_avg_pool2d as global_avg_pool2d
from .global_pool import global_max_pool2d as global_max_pool2d
from .locally_connected import locally_connected2d as locally_connected2d
from .norm import global_response_norm as global_response_norm
from .pooling import lp_pool2d as lp_pool2d
from .pooling import mixed_pool2d as mixed_pool2d
from .pooling import softmax_pool2d as softmax_pool2d
from .roi_align import roi_align as roi_align
from .roi_pool import roi_pool as roi_pool
from .spp import spatial_pyramid_pool2d as spatial_pyramid_pool2d
from .stochastic_pool import stochastic_pool2d as stochastic_pool2d
from .unpool import unpool2d as unpool2d

__all__ = [
    "abs_tanh", "binomial_filter2d", "blur_pool2d", "channel_max_pool2d", "drop_connect", "global_avg_pool2d",
    "global_max_pool2d", "global_response_norm", "locally_connected2d", "lp_pool2d", "max_blur_pool2d",
    "mixed_pool2d", "roi_align", "roi_pool", "scaled_tanh", "softmax_pool2d", "spatial_pyramid_pool2d", "stochastic_pool2d",
    "unpool2d",
]
