"""Effective receptive field (Luo, Li, Urtasun & Zemel 2016): measured by back-propagation.

The gradient of one centre unit of a feature map with respect to the input is non-zero only inside the
unit's theoretical receptive field, and in practice concentrates in a much smaller, roughly Gaussian
region. Following Luo et al. (Sec. 2 and 4), the output gradient is set to 1 at the centre unit (summed
over channels), back-propagated to the input, and ``|grad|`` is averaged over random inputs and input
channels. The effective size along an axis is the length of the shortest interval holding ``mass`` (by
default 95 %) of the marginal gradient mass along that axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from .summary import parse_input_shape, summarize

__all__ = ["ERFResult", "effective_receptive_field"]


@dataclass
class ERFResult:
    """Measured vs. theoretical receptive field of the centre unit of ``layer``'s output.

    Attributes:
        layer: Module name whose output was probed.
        centre: Index of the probed unit along each spatial axis of that output.
        measured: Effective size per axis (input pixels holding ``mass`` of the gradient).
        theoretical: Theoretical size per axis (from the recursion), unclipped.
        theoretical_in_input: The theoretical field of the centre unit clipped to the input, per axis.
        support: Input pixels with non-zero gradient, per axis (never more than ``theoretical_in_input``).
        mass: The mass fraction used.
        gradient: Mean ``|d out / d input|`` over samples and channels, shape = input spatial shape.
    """

    layer: str
    centre: tuple[int, ...]
    measured: tuple[int, ...]
    theoretical: tuple[float, ...]
    theoretical_in_input: tuple[int, ...]
    support: tuple[int, ...]
    mass: float
    gradient: torch.Tensor

    def to_dict(self) -> dict[str, object]:
        return {
            "layer": self.layer,
            "centre": list(self.centre),
            "measured": list(self.measured),
            "theoretical": list(self.theoretical),
            "theoretical_in_input": list(self.theoretical_in_input),
            "support": list(self.support),
            "mass": self.mass,
        }


def _shortest_interval(weights: torch.Tensor, mass: float) -> int:
    """Length of the shortest contiguous run of ``weights`` (1-D, >= 0) holding ``mass`` of the total."""
    csum = torch.cat([torch.zeros(1, dtype=torch.float64), weights.detach().double().cpu().cumsum(0)])
    total = float(csum[-1])
    if total <= 0:
        return 0
    need = csum[:-1] + mass * total * (1 - 1e-9)  # for each start lo: the cumulative sum the end must reach
    ends = torch.searchsorted(csum, need)  # smallest hi with csum[hi] >= need
    lengths = ends - torch.arange(len(weights))
    return int(lengths[ends < len(csum)].min())


def effective_receptive_field(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    layer: str | None = None,
    mass: float = 0.95,
    num_samples: int = 8,
    seed: int = 0,
) -> ERFResult:
    """Measure the effective receptive field of the centre unit of a feature map (Luo et al. 2016).

    Args:
        model: A module taking a float input of ``input_shape`` (plus batch).
        input_shape: ``(C, *spatial)`` without batch.
        layer: Name of the module whose output is probed; default: the last leaf module whose output
            still has a spatial receptive field (before global pooling / flattening).
        mass: Fraction of the gradient mass the effective field must hold, in (0, 1].
        num_samples: Random N(0, 1) inputs averaged over (a seeded generator makes it repeatable).
        seed: Seed for the inputs.

    Returns:
        An :class:`ERFResult` with the measured and theoretical sizes.

    Reference:
        W. Luo, Y. Li, R. Urtasun, R. Zemel, "Understanding the Effective Receptive Field in Deep
        Convolutional Neural Networks", NeurIPS 2016.
    """
    if not 0 < mass <= 1:
        raise ConfigError(f"Expected 0 < mass <= 1. Received: mass={mass}")
    if num_samples < 1:
        raise ConfigError(f"Expected num_samples >= 1. Received: num_samples={num_samples}")
    dtype = getattr(model, "input_dtype", None)
    if dtype is not None and not dtype.is_floating_point:
        raise ConfigError("The effective receptive field needs a float input; this model takes token ids")
    shape = parse_input_shape(input_shape)
    if len(shape) < 2:
        raise ConfigError(f"Expected an input shape (C, *spatial) with at least one spatial axis. Received: {shape}")
    summary = summarize(model, shape, allow_floor=True)
    spatial = [r for r in summary.layers if r.receptive_field is not None and len(r.output_shape) >= 2]
    if layer is None:
        if not spatial:
            raise ConfigError("No layer of this model has a spatial receptive field to probe")
        row = spatial[-1]
    else:
        row = summary.row(layer)
        if row.receptive_field is None:
            raise ConfigError(f"layer {layer!r} has no spatial receptive field: {row.receptive_field_note}")
    module = dict(model.named_modules())[row.name]
    captured: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, a, out: captured.append(out))
    was_training = model.training
    model.eval()
    p = next(model.parameters(), None)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num_samples, *shape, generator=gen)
    if p is not None:
        x = x.to(device=p.device, dtype=p.dtype if p.is_floating_point() else x.dtype)
    x.requires_grad_(True)
    try:
        model(x)
    finally:
        handle.remove()
        model.train(was_training)
    y = captured[0]
    out_spatial = tuple(y.shape[2:])
    centre = tuple(s // 2 for s in out_spatial)
    y[(slice(None), slice(None), *centre)].sum().backward()  # type: ignore[index]
    grad = x.grad.detach().abs().mean(dim=(0, 1))  # type: ignore[union-attr]  # (spatial...)
    measured, support, clipped = [], [], []
    rf = row.receptive_field
    for axis in range(grad.ndim):
        other = tuple(d for d in range(grad.ndim) if d != axis)
        marginal = grad.sum(dim=other) if other else grad
        measured.append(_shortest_interval(marginal, mass))
        nz = torch.nonzero(marginal > 0).flatten()
        support.append(int(nz.max() - nz.min() + 1) if nz.numel() else 0)
        a = rf[axis]  # type: ignore[index]
        c = a["start"] + centre[axis] * a["jump"]
        lo, hi = c - (a["size"] - 1) / 2, c + (a["size"] - 1) / 2
        lo_i, hi_i = max(0, int(-(-lo // 1))), min(shape[axis + 1] - 1, int(hi // 1))
        clipped.append(max(0, hi_i - lo_i + 1))
    return ERFResult(
        layer=row.name,
        centre=centre,
        measured=tuple(measured),
        theoretical=tuple(a["size"] for a in rf),  # type: ignore[union-attr]
        theoretical_in_input=tuple(clipped),
        support=tuple(support),
        mass=mass,
        gradient=grad.cpu(),
    )
