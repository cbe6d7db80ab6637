"""Registers the torch layers that already are the exact layer, so configs can name them.

Names are the snake_case of the class name (``Conv2d`` -> ``conv2d``, ``MaxPool2d`` -> ``max_pool2d``).
torch's ``LPPool1d/2d/3d`` are registered as ``torch_lp_pool*``: ``lp_pool2d`` is ours, the article's
normalized form (see :class:`~cnnkit.layers.LpPool2d`).
"""

from __future__ import annotations

from torch import nn

from ._registry import LAYERS, snake_case

__all__ = ["TORCH_LAYERS"]

TORCH_LAYERS: tuple[type[nn.Module], ...] = (
    # convolution
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
    # pooling and unpooling
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.FractionalMaxPool2d, nn.MaxUnpool1d, nn.MaxUnpool2d, nn.MaxUnpool3d,
    # normalization
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
    # activations
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish,
    nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Softmax, nn.LogSoftmax,
    # regularization
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
    # shape and plumbing
    nn.Linear, nn.Bilinear, nn.Flatten, nn.Unflatten, nn.Identity, nn.Upsample, nn.PixelShuffle,
    nn.PixelUnshuffle, nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ReflectionPad2d, nn.ReplicationPad2d,
    nn.ConstantPad2d, nn.Embedding, nn.MultiheadAttention, nn.LSTM, nn.GRU,
)

for _cls in TORCH_LAYERS:
    LAYERS.add(snake_case(_cls.__name__), _cls, source="torch.nn")
for _cls in (nn.LPPool1d, nn.LPPool2d, nn.LPPool3d):
    LAYERS.add("torch_" + snake_case(_cls.__name__), _cls, source="torch.nn")
