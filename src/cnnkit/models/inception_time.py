"""InceptionTime (Fawaz et al. 2020): inception modules for time-series classification."""

from __future__ import annotations

import torch
from torch import nn

from ._registry import register_model
from ._series import SeriesClassifier, check_positive, same_conv1d

__all__ = ["InceptionModule1d", "InceptionTime", "inception_time"]


class InceptionModule1d(nn.Module):
    """One inception module of Fawaz et al. (2020), Fig. 1: a bottleneck (1x1 conv to ``bottleneck``
    channels, skipped for a 1-channel input as in the authors' code), three convolutions of lengths
    ``k, k/2, k/4`` (40, 20, 10 by default) and a max-pool(3) + 1x1 conv branch, ``filters`` channels each;
    concatenated (``4 filters``), batch norm, ReLU. Convolutions have no bias (batch norm follows).

    Shape: ``(B, in_channels, L) -> (B, 4 * filters, L)``.
    """

    def __init__(self, in_channels: int, *, filters: int = 32, bottleneck: int = 32, kernel_size: int = 40) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, filters=filters, bottleneck=bottleneck, kernel_size=kernel_size)
        use_bottleneck = in_channels > 1
        self.bottleneck = nn.Conv1d(in_channels, bottleneck, 1, bias=False) if use_bottleneck else nn.Identity()
        c = bottleneck if use_bottleneck else in_channels
        kernels = [max(1, kernel_size // (2**i)) for i in range(3)]
        self.convs = nn.ModuleList(same_conv1d(c, filters, k, bias=False) for k in kernels)
        self.pool = nn.MaxPool1d(3, stride=1, padding=1)
        self.pool_conv = nn.Conv1d(in_channels, filters, 1, bias=False)
        self.bn = nn.BatchNorm1d(4 * filters)
        self.relu = nn.ReLU()
        self.kernels = kernels

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        z = self.bottleneck(x)
        # The max-pool must not see padding as zeros: -inf there, as its own padding at the series' end.
        pooled = self.pool(x.masked_fill(mask == 0, float("-inf"))).masked_fill(mask == 0, 0.0)
        branches = [conv(z) for conv in self.convs] + [self.pool_conv(pooled)]
        return self.relu(self.bn(torch.cat(branches, dim=1))) * mask

    def extra_repr(self) -> str:
        return f"kernels={self.kernels}"


class InceptionTime(SeriesClassifier):
    """One InceptionTime network (Fawaz et al. 2020, Fig. 1 and Sec. 3): ``depth`` inception modules with
    a residual connection (1x1 conv + batch norm on the shortcut) around every three, global average
    pooling and a softmax layer. The paper's InceptionTime is an ensemble of five such networks from
    different random initializations; cnnkit builds (and the benchmark reports) single networks.

    Args:
        num_classes, in_channels, seq_len: as for :class:`~cnnkit.models.fcn1d.FCN1d`.
        depth: inception modules (6).
        filters: channels per branch (32); modules output ``4 * filters``.
        kernel_size: the longest filter (40; Sec. 4.3 studies 10 to 80).

    Example:
        >>> inception_time(num_classes=3, depth=3)(torch.randn(2, 1, 50)).shape
        torch.Size([2, 3])

    Reference:
        H. Ismail Fawaz, B. Lucas, G. Forestier, C. Pelletier, D. F. Schmidt, J. Weber, G. I. Webb,
        L. Idoumghar, P.-A. Muller, F. Petitjean, "InceptionTime: Finding AlexNet for time series
        classification", Data Mining and Knowledge Discovery 34, 2020, Sec. 3, Fig. 1-2.

    Deviations:
        A single network: the paper's ensemble of five is not built. Padding as for FCN1d.
    """

    def __init__(
        self, *, num_classes: int = 2, in_channels: int = 1, seq_len: int = 150, depth: int = 6, filters: int = 32,
        kernel_size: int = 40,
    ) -> None:
        super().__init__()
        check_positive(num_classes=num_classes, in_channels=in_channels, seq_len=seq_len, depth=depth)
        width = 4 * filters
        self.blocks = nn.ModuleList(
            InceptionModule1d(in_channels if i == 0 else width, filters=filters, bottleneck=filters, kernel_size=kernel_size)
            for i in range(depth)
        )
        shortcuts, c = [], in_channels
        for i in range(depth):
            if i % 3 == 2:
                shortcuts.append(nn.Sequential(nn.Conv1d(c, width, 1, bias=False), nn.BatchNorm1d(width)))
                c = width
        self.shortcuts = nn.ModuleList(shortcuts)
        self.relu = nn.ReLU()
        self.head = nn.Linear(width, num_classes)
        self.input_shape = (in_channels, seq_len)
        self.num_classes = num_classes

    def run_blocks(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        residual = x
        for i, block in enumerate(self.blocks):
            x = block(x, mask)
            if i % 3 == 2:
                x = self.relu(x + self.shortcuts[i // 3](residual)) * mask
                residual = x
        return x


@register_model(
    paper="Ismail Fawaz et al. 2020, InceptionTime: Finding AlexNet for time series classification, Fig. 1",
    year=2020,
    input_size=(1, 150),
    num_params=420_450,  # hand count in tests/models/test_inception_time.py
    task="series",
    gradcam_layer="blocks.5",
)
def inception_time(
    *, num_classes: int = 2, in_channels: int = 1, seq_len: int = 150, depth: int = 6, filters: int = 32, kernel_size: int = 40
) -> InceptionTime:
    """One InceptionTime network (6 modules, 32 filters, kernels 40/20/10). See :class:`InceptionTime`."""
    return InceptionTime(
        num_classes=num_classes, in_channels=in_channels, seq_len=seq_len, depth=depth, filters=filters, kernel_size=kernel_size
    )
