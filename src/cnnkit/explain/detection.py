"""``cnnkit explain`` for detection runs: Grad-CAM (Selvaraju et al. 2017, Eq. 1-2) of the top detection's
class score, on the backbone's feature map."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .._text import safe_text
from ..errors import CnnkitError
from ..plots.explain import plot_overlay
from .attribution import no_leftover_hooks, resolve_layer

__all__ = ["detection_gradcam", "explain_detections"]


def detection_gradcam(model: torch.nn.Module, x: torch.Tensor, *, layer: str = "backbone.layer3") -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM maps (N, H, W) of each image's top detection score, and those detections (N, 6).

    ``alpha_k = mean_ij d y / d A^k_ij`` over the layer's map ``A``, ``L = ReLU(sum_k alpha_k A^k)``,
    upsampled bilinearly to the input; ``y`` is the softmax score of the best detection's class for its
    proposal (the proposals themselves are held fixed). An image without detections gets a zero map.
    """
    _, module = resolve_layer(model, layer)
    model.eval()
    maps, tops = [], []
    with no_leftover_hooks(model):
        store: dict[str, torch.Tensor] = {}

        def hook(_m: torch.nn.Module, _i: object, out: torch.Tensor) -> None:
            out.retain_grad()
            store["a"] = out

        module.register_forward_hook(hook)
        for img in x:
            with torch.enable_grad():
                d = model(img[None].detach().requires_grad_(False))[0]
                a = store["a"]
                if d[0, 5] < 0:
                    maps.append(torch.zeros(x.shape[-2:]))
                    tops.append(d[0].detach())
                    continue
                grad = torch.autograd.grad(d[0, 4], a, retain_graph=False, allow_unused=True)[0]
            if grad is None:
                grad = torch.zeros_like(a)
            alpha = grad.mean(dim=(2, 3), keepdim=True)
            cam = F.relu((alpha * a).sum(1, keepdim=True)).detach()
            maps.append(F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0])
            tops.append(d[0].detach())
    return torch.stack(maps), torch.stack(tops)


def explain_detections(model: torch.nn.Module, x: torch.Tensor, *, names: list[str], class_names: list[str] | None,
                       out: str | Path, method: str, layer: str | None = None) -> list[Path]:
    """Write ``OUT/<stem>-gradcam.png`` per input: the image and the Grad-CAM of its top detection."""
    if method != "gradcam":
        raise CnnkitError(f"detection runs explain with --method gradcam (the top detection's class score); received {method!r}")
    lname = layer or "backbone.layer3"
    cams, tops = detection_gradcam(model, x, layer=lname)
    folder = Path(out)
    paths = []
    for name, img, cam, top in zip(names, x, cams, tops):
        k = int(top[5])
        what = "no detection" if k < 0 else f"top detection: {(class_names or [])[k] if class_names and k < len(class_names) else k} {float(top[4]):.2f}"
        stem = Path(name).stem
        paths.append(plot_overlay(img, cam, folder / f"{safe_text(stem, 80)}-gradcam.png", title=f"gradcam @ {lname}, {safe_text(what, 80)}"))
    return paths
