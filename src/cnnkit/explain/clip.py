"""Which frames and places of a clip mattered: attributions over ``(T, H, W)`` for video models.

- ``saliency``: ``max_c |d y_t / d x|`` per frame and pixel (Simonyan, Vedaldi & Zisserman 2014, Sec. 3.1,
  applied to a clip ``(C, T, H, W)``).
- ``gradcam``: Grad-CAM (Selvaraju et al. 2017, eqs. 1-2) on a layer of the model, in whichever form its
  activation takes: a 3-D convolution's ``(B, K, t, h, w)`` map gives ``ReLU(sum_k alpha_k A^k)`` with
  ``alpha_k`` averaged over space *and time*, upsampled trilinearly to ``(T, H, W)``; a per-frame 2-D CNN's
  ``(B * T, K, h, w)`` map (a CNN + LSTM) gives one map per frame, ``alpha_k`` averaged per frame; a
  ``(B, K, h, w)`` map that has no time axis (a two-stream net's temporal stream) gives one spatial map,
  shown on every frame.
- ``occlusion``: per frame, the drop of the class score when that frame is replaced by the data mean
  (0 after normalization): which frames the prediction depends on (Zeiler & Fergus 2014, Sec. 4.2, over
  time instead of space). The map is that drop, constant over the frame.

Every map comes with a per-frame importance ``(N, T)``: the map's share in each frame (occlusion: the
drop itself). Written by hand (no Captum): Captum's layer methods require the layer's batch to be the
input's, which a per-frame CNN's ``B * T`` is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CnnkitError, did_you_mean
from ..plots.clips import plot_clip_attribution
from .attribution import no_leftover_hooks, resolve_layer

__all__ = ["CLIP_METHODS", "ClipExplanation", "clip_attribution", "default_clip_layer", "explain_clips"]

CLIP_METHODS = ("saliency", "gradcam", "occlusion")


@dataclass
class ClipExplanation:
    """Maps ``(N, T, H, W)``, per-frame importance ``(N, T)``, targets, predictions, the layer, the PNGs."""

    method: str
    maps: torch.Tensor
    frame_importance: torch.Tensor
    targets: torch.Tensor
    predicted: torch.Tensor
    probability: torch.Tensor
    layer: str | None = None
    paths: list[Path] = field(default_factory=list)


def default_clip_layer(model: nn.Module, info: dict[str, Any] | None = None) -> str:
    """The registry's ``gradcam_layer`` when it names a convolution of this model, else its last
    Conv3d, else its last Conv2d."""
    modules = dict(model.named_modules())
    build = (info or {}).get("build") or {}
    name = build.get("name") if isinstance(build, dict) else None
    if name:
        try:
            from ..models import model_info

            layer = model_info(str(name)).get("gradcam_layer")
        except CnnkitError:
            layer = None
        if layer in modules and isinstance(modules[layer], (nn.Conv2d, nn.Conv3d)):
            # A conv that is the last of its kind (C3D with batch norm shifts the registry's index).
            kind = type(modules[layer])
            if [n for n, m in modules.items() if isinstance(m, kind)][-1] == layer:
                return str(layer)
    for kind in (nn.Conv3d, nn.Conv2d):
        names = [n for n, m in modules.items() if isinstance(m, kind)]
        if names:
            return names[-1]
    raise CnnkitError("the model has no Conv3d or Conv2d layer; pass layer=NAME (--layer) to choose one")


def _file_stem(name: str) -> str:
    """A file-name-safe stem of an input's name (``clips.npy[1]`` -> ``clips.npy_1``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).strip("_") or "clip"


def _scores(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if isinstance(out, (tuple, list)):
        out = out[0]
    if out.ndim != 2:
        raise CnnkitError(f"Expected the model to output (batch, classes) scores. Received: {tuple(out.shape)}")
    return out


def _gradcam(model: nn.Module, x: torch.Tensor, tgt: torch.Tensor, layer: str) -> torch.Tensor:
    _, module = resolve_layer(model, layer)
    saved: dict[str, torch.Tensor] = {}

    def hook(_: nn.Module, __: Any, out: Any) -> None:
        act = out[0] if isinstance(out, (tuple, list)) else out
        act.retain_grad()
        saved["a"] = act

    handle = module.register_forward_hook(hook)
    try:
        scores = _scores(model, x)
    finally:
        handle.remove()
    if "a" not in saved:
        raise CnnkitError(f"layer {layer!r} was not used by the forward pass")
    scores.gather(1, tgt[:, None]).sum().backward()
    a, g = saved["a"].detach(), saved["a"].grad
    if g is None:
        raise CnnkitError(f"the class score does not depend on layer {layer!r}; choose another --layer")
    b, _, t, h, w = x.shape
    if a.ndim == 5:  # (B, K, t', h', w'): a 3-D convolution
        alpha = g.mean(dim=(2, 3, 4), keepdim=True)
        cam = F.relu((alpha * a).sum(1, keepdim=True))
        return F.interpolate(cam, size=(t, h, w), mode="trilinear", align_corners=False)[:, 0].clamp_min(0)
    if a.ndim == 4 and a.shape[0] == b * t and b * t != b:  # (B * T, K, h', w'): a per-frame CNN
        alpha = g.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((alpha * a).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=(h, w), mode="bilinear", align_corners=False).clamp_min(0)
        return cam.view(b, t, h, w)
    if a.ndim == 4 and a.shape[0] == b:  # (B, K, h', w'): no time axis
        alpha = g.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((alpha * a).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=(h, w), mode="bilinear", align_corners=False).clamp_min(0)
        return cam.expand(b, t, h, w).clone()
    raise CnnkitError(f"Grad-CAM needs a convolutional layer; {layer!r} gives {tuple(a.shape)}")


@torch.no_grad()
def _frame_occlusion(model: nn.Module, x: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    base = _scores(model, x).gather(1, tgt[:, None])[:, 0]
    drops = []
    for k in range(x.shape[2]):
        xo = x.clone()
        xo[:, :, k] = 0.0  # the normalized data mean
        drops.append(base - _scores(model, xo).gather(1, tgt[:, None])[:, 0])
    return torch.stack(drops, 1)  # (N, T)


def clip_attribution(
    model: nn.Module, x: torch.Tensor, method: str, *, target: int | None = None, layer: str | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(maps (N, T, H, W), frame importance (N, T), targets (N,))`` for clips ``x`` ``(N, C, T, H, W)``.

    The class explained is ``target`` if given, else each clip's predicted class.
    """
    if method not in CLIP_METHODS:
        raise CnnkitError(f"Unknown clip explanation {method!r}{did_you_mean(str(method), CLIP_METHODS)}; for clips choose one of {', '.join(CLIP_METHODS)}")
    if x.ndim != 5:
        raise CnnkitError(f"Expected clips of shape (N, C, T, H, W). Received: {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    dev = next(iter(model.parameters()), torch.empty(0)).device
    x = x.detach().to(dev).float()
    try:
        with no_leftover_hooks(model):
            with torch.no_grad():
                scores = _scores(model, x)
            if target is not None and not 0 <= int(target) < scores.shape[1]:
                raise CnnkitError(f"Expected 0 <= target < {scores.shape[1]}. Received: target={target}")
            tgt = scores.argmax(1) if target is None else torch.full((len(x),), int(target), device=dev)
            if method == "occlusion":
                drops = _frame_occlusion(model, x, tgt)
                maps = drops[:, :, None, None].expand(-1, -1, *x.shape[-2:]).clone()
                return maps.cpu(), drops.cpu(), tgt.cpu()
            with torch.enable_grad():
                if method == "saliency":
                    xi = x.clone().requires_grad_(True)
                    _scores(model, xi).gather(1, tgt[:, None]).sum().backward()
                    assert xi.grad is not None  # the score was just backpropagated to xi
                    maps = xi.grad.abs().amax(dim=1)  # (N, T, H, W)
                else:
                    maps = _gradcam(model, x, tgt, layer or default_clip_layer(model))
            model.zero_grad(set_to_none=True)
    finally:
        model.train(was_training)
    total = maps.sum(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
    importance = (maps / total).sum(dim=(2, 3))
    return maps.detach().cpu(), importance.detach().cpu(), tgt.cpu()


def explain_clips(
    model: nn.Module,
    x: torch.Tensor,
    *,
    method: str,
    target: int | None = None,
    layer: str | None = None,
    class_names: list[str] | None = None,
    names: list[str] | None = None,
    out: str | Path | None = None,
    info: dict[str, Any] | None = None,
) -> ClipExplanation:
    """Explain a video model's predictions for clips ``x`` (model input); with ``out``, one PNG per clip:
    its frames, the map over each frame, and each frame's importance."""
    names = names or [f"clip{i}" for i in range(len(x))]
    if method == "gradcam" and layer is None:
        layer = default_clip_layer(model, info)
    maps, importance, tgt = clip_attribution(model, x, method, target=target, layer=layer)
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(_scores(model, x.to(next(iter(model.parameters())).device).float()).float(), 1).cpu()
    conf, pred = probs.max(1)
    cls = class_names or [str(i) for i in range(probs.shape[1])]
    paths: list[Path] = []
    if out is not None:
        for i in range(len(x)):
            title = (f"{names[i]}: predicted {cls[int(pred[i])]} (p={float(conf[i]):.3f})\n{method}"
                     + (f" @ {layer}" if method == "gradcam" else "") + f", explaining {cls[int(tgt[i])]}")
            paths.append(plot_clip_attribution(x[i].cpu(), maps[i], importance[i],
                                               Path(out) / f"{i:03d}-{_file_stem(names[i])}-{method}.png",
                                               title=title, signed=method == "occlusion"))
    return ClipExplanation(method, maps, importance, tgt, pred, conf, layer if method == "gradcam" else None, paths)
