"""Activations the article names that torch lacks: |tanh x| and LeCun's scaled tanh."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_real
from ._registry import register_layer

__all__ = ["AbsTanh", "ScaledTanh", "abs_tanh", "scaled_tanh"]


def abs_tanh(x: Tensor) -> Tensor:
    """``|tanh(x)|``."""
    return torch.tanh(x).abs()


def scaled_tanh(x: Tensor, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> Tensor:
    """``amplitude * tanh(slope * x)``; the defaults give f(1) = 1 and f(-1) = -1 (approximately)."""
    return amplitude * torch.tanh(slope * x)


@register_layer
class AbsTanh(nn.Module):
    """Rectified hyperbolic tangent ``f(x) = |tanh(x)|``.

    Shape:
        any -> same shape.

    Example:
        >>> AbsTanh()(torch.tensor([-1.0, 0.0, 1.0]))
        tensor([0.7616, 0.0000, 0.7616])

    Reference:
        Jarrett, Kavukcuoglu, Ranzato & LeCun, "What is the Best Multi-Stage Architecture for Object
        Recognition?", ICCV 2009, Sec. 2 (the "Rabs" absolute-value rectification after tanh).
    """

    def forward(self, x: Tensor) -> Tensor:
        return abs_tanh(x)

    def extra_repr(self) -> str:
        return "|tanh(x)|"


@register_layer
class ScaledTanh(nn.Module):
    """LeCun's scaled hyperbolic tangent ``f(a) = A tanh(S a)``, A = 1.7159, S = 2/3.

    With these constants f(+-1) = +-1 and the second derivative is largest at a = 1.

    Args:
        amplitude: A.
        slope: S (> 0).

    Shape:
        any -> same shape.

    Example:
        >>> round(float(ScaledTanh()(torch.tensor(1.0))), 4)
        1.0

    Reference:
        LeCun, Bottou, Bengio & Haffner, "Gradient-Based Learning Applied to Document Recognition",
        Proc. IEEE 1998, Sec. II-B and Appendix A (LeNet-5's squashing function).
    """

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.amplitude = check_real(amplitude, "amplitude", low=0.0, low_open=True)
        self.slope = check_real(slope, "slope", low=0.0, low_open=True)

    def forward(self, x: Tensor) -> Tensor:
        return scaled_tanh(x, self.amplitude, self.slope)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.6g}"
