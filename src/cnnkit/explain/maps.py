"""What a network has learned, shown directly: first-layer kernels as an image grid, and the activation
maps of a layer for an input (Zeiler & Fergus 2014 visualize both, Fig. 2 and Fig. 3)."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import CnnkitError
from .attribution import no_leftover_hooks, resolve_layer

__all__ = ["first_conv_layer", "filter_images", "feature_maps"]


def first_conv_layer(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """``(name, module)`` of the first Conv2d in ``model.named_modules()`` order."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    raise CnnkitError("the model has no Conv2d layer, so there are no filters to show")


def filter_images(conv: nn.Conv2d) -> torch.Tensor:
    """The kernels of ``conv`` as ``(out_channels, C, kH, kW)`` images in [0, 1], each min-max scaled on its
    own, with ``C`` = 3 when the layer reads 3 channels (shown as RGB) and 1 otherwise (the mean over input
    channels, for grouped or many-channel layers)."""
    w = conv.weight.detach().float().cpu()
    if w.shape[1] != 3:
        w = w.mean(dim=1, keepdim=True)
    lo = w.amin(dim=(1, 2, 3), keepdim=True)
    hi = w.amax(dim=(1, 2, 3), keepdim=True)
    return (w - lo) / torch.where(hi > lo, hi - lo, torch.ones_like(hi))


@torch.no_grad()
def feature_maps(model: nn.Module, x: torch.Tensor, layer: str | None = None) -> tuple[str, torch.Tensor]:
    """The output of ``layer`` (default: the first Conv2d) for inputs ``x``: ``(name, (N, C, h, w))``.

    The forward hook used to catch it is removed afterwards, even on error.
    """
    if layer is None:
        name, module = first_conv_layer(model)
    else:
        name, module = resolve_layer(model, layer)  # type: ignore[assignment]
    caught: list[torch.Tensor] = []

    def hook(_m: nn.Module, _inp: object, out: object) -> None:
        if isinstance(out, torch.Tensor):
            caught.append(out.detach().float().cpu())

    was_training = model.training
    model.eval()
    device = next(iter(model.parameters()), torch.empty(0)).device
    try:
        with no_leftover_hooks(model):
            handle = module.register_forward_hook(hook)
            try:
                model(x.to(device))
            finally:
                handle.remove()
    finally:
        model.train(was_training)
    if not caught:
        raise CnnkitError(f"layer {name!r} did not run (or returned no tensor) for this input")
    out = caught[0]
    if out.ndim != 4:
        raise CnnkitError(f"layer {name!r} outputs shape {tuple(out.shape)}, not (N, C, H, W) feature maps; choose a conv or pooling layer")
    return name, out
