"""Global Response Normalization (ConvNeXt V2)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_int, check_real
from ._registry import register_layer

__all__ = ["GlobalResponseNorm", "global_response_norm"]


def global_response_norm(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-6) -> Tensor:
    """GRN on NCHW: ``gamma * (x * N(G(x))) + beta + x`` with ``G`` the per-channel spatial L2 norm
    and ``N(g) = g / (mean over channels of g + eps)``; ``gamma``, ``beta`` have shape (C,)."""
    g = torch.linalg.vector_norm(x, ord=2, dim=(2, 3), keepdim=True)  # (B, C, 1, 1): Eq. 1
    n = g / (g.mean(dim=1, keepdim=True) + eps)                       # divisive normalization: Eq. 2
    return gamma.view(1, -1, 1, 1) * (x * n) + beta.view(1, -1, 1, 1) + x  # calibration + residual


@register_layer
class GlobalResponseNorm(nn.Module):
    """Global Response Normalization: aggregate, normalize across channels, calibrate.

    ``X_i <- gamma * X_i * N(G(X))_i + beta + X_i`` with ``G(X)_i = ||X_i||_2`` over (H, W) and
    ``N(G)_i = G_i / (mean_j G_j + eps)``. ``gamma`` and ``beta`` start at zero, so the layer starts as
    the identity.

    Args:
        channels: number of channels C.
        eps: added to the channel mean of the norms.

    Shape:
        (B, C, H, W) -> (B, C, H, W).

    Example:
        >>> grn = GlobalResponseNorm(8)
        >>> x = torch.randn(2, 8, 4, 4)
        >>> torch.equal(grn(x), x)
        True

    Reference:
        Woo et al., "ConvNeXt V2: Co-designing and Scaling ConvNets with Masked Autoencoders",
        CVPR 2023, Sec. 3, Eq. 1-3 and Algorithm 1.

    Deviations:
        NCHW layout (the paper's code is channels-last); same math.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.channels = check_int(channels, "channels")
        self.eps = check_real(eps, "eps", low=0.0, low_open=True)
        self.gamma = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"Expected (B, {self.channels}, H, W) input. Received: shape={tuple(x.shape)}")
        return global_response_norm(x, self.gamma.to(x.dtype), self.beta.to(x.dtype), self.eps)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, eps={self.eps}"
