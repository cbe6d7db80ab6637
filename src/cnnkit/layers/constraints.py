"""Max-norm: project each neuron's incoming weight vector onto the L2 ball of radius c."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_real
from .locally_connected import LocallyConnected2d

__all__ = ["MaxNorm", "apply_max_norm", "neuron_weight_view"]


def neuron_weight_view(module: nn.Module) -> tuple[Tensor, tuple[int, ...]] | None:
    """The weight of ``module`` reshaped (as a view) so that fan-in axes can be reduced, and those axes.

    Linear: rows. ConvNd: each output filter. ConvTransposeNd: each output channel (weight is
    (C_in, C_out / groups, *k), grouped). LocallyConnected: each (position, output channel).
    Other modules: None.
    """
    weight = getattr(module, "weight", None)
    if not isinstance(weight, Tensor):
        return None
    if isinstance(module, nn.Linear):
        return weight, (1,)
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        g = module.groups
        view = weight.view(g, weight.shape[0] // g, *weight.shape[1:])  # (g, in/g, out/g, *k)
        return view, (1, *range(3, view.dim()))
    if isinstance(module, nn.modules.conv._ConvNd):
        return weight, tuple(range(1, weight.dim()))
    if isinstance(module, LocallyConnected2d):
        return weight, (1, 2, 3)  # (positions, kh, kw, in, out)
    return None


@torch.no_grad()
def apply_max_norm(model: nn.Module, max_norm: float = 3.0, eps: float = 0.0) -> int:
    """Project every neuron's incoming weights of ``model`` (itself and all submodules) into
    ``||w||_2 <= max_norm``; returns how many vectors were rescaled.

    Vectors already inside the ball are untouched (multiplied by exactly 1). Call it after each
    optimizer step. Biases are not constrained (as in the paper).
    """
    c = check_real(max_norm, "max_norm", low=0.0, low_open=True)
    clipped = 0
    for module in model.modules():
        found = neuron_weight_view(module)
        if found is None:
            continue
        view, dims = found
        norms = torch.linalg.vector_norm(view, ord=2, dim=dims, keepdim=True)
        over = norms > c
        scale = torch.where(over, c / (norms + eps), torch.ones_like(norms))
        view.mul_(scale)
        clipped += int(over.sum())
    return clipped


class MaxNorm:
    """The max-norm constraint ``||w||_2 <= c`` on each neuron's incoming weight vector.

    Args:
        max_norm: the radius c (> 0); the article and Srivastava et al. report c = 3 to 4.

    Example:
        >>> constraint = MaxNorm(3.0)
        >>> model = nn.Linear(10, 4)
        >>> _ = constraint(model)  # after optimizer.step()
        >>> bool((model.weight.norm(dim=1) <= 3.0 + 1e-6).all())
        True

    Reference:
        Srebro & Shraibman, COLT 2005 (max-norm); Srivastava et al., "Dropout", JMLR 15, 2014,
        Sec. 5.1 (projection onto ||w||_2 <= c after each update).
    """

    def __init__(self, max_norm: float = 3.0) -> None:
        self.max_norm = check_real(max_norm, "max_norm", low=0.0, low_open=True)

    def __call__(self, model: nn.Module) -> int:
        return apply_max_norm(model, self.max_norm)

    def __repr__(self) -> str:
        return f"MaxNorm(max_norm={self.max_norm})"
