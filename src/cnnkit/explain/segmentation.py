"""Per-class saliency for segmentation models: which input pixels drive the pixels predicted as class c.

For class ``c`` the explained score is the sum of the class-``c`` logits over the pixels predicted as
``c``, ``S_c = sum_{p: argmax = c} z_c(p)``; its saliency map is ``max_channels |dS_c / dx|``, the
gradient saliency of Simonyan, Vedaldi & Zisserman (2014, Sec. 3) applied to a region's score instead of
an image's, as in class-wise saliency for dense prediction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CnnkitError

__all__ = ["class_saliency", "explain_segmentation"]

_MAX_CLASSES_SHOWN = 6


def class_saliency(model: torch.nn.Module, x: torch.Tensor, classes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prediction (H', W'), saliency (len(classes), H, W))`` for one input ``x`` ``(1, C, H, W)``.

    A class with no predicted pixel gets the gradient of its logits summed over the whole map.
    """
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    logits = model(x)
    logits = logits[0] if isinstance(logits, (tuple, list)) else logits
    pred = logits.argmax(1)[0].detach()
    maps = []
    for c in classes:
        region = (pred == c).float()
        if region.sum() == 0:
            region = torch.ones_like(region)
        (grad,) = torch.autograd.grad((logits[0, c] * region).sum(), x, retain_graph=True)
        maps.append(grad[0].abs().amax(0))
    return pred.cpu(), torch.stack(maps).cpu()


def explain_segmentation(
    loaded: Any, inputs: list[str | Path], *, method: str, target: int | None, out: str | Path
) -> list[Path]:
    """``OUT/<stem>_saliency.png`` per input: the image, its predicted mask, and one saliency map per
    predicted foreground class (or ``target`` alone), at most six."""
    from ..evaluate.predict import load_inputs
    from ..plots import new_figure, save_figure
    from ..plots.images import to_display
    from ..plots.segmentation import colourize

    if method != "saliency":
        raise CnnkitError(f"segmentation runs are explained with --method saliency (per-class saliency); received {method!r}")
    model = loaded.model
    device = next(iter(model.parameters())).device
    names, x = load_inputs(inputs, loaded.preprocessing)
    class_names = loaded.class_names or []
    k = int(loaded.info.get("build", {}).get("num_classes") or len(class_names) or 2)
    if target is not None and not 0 <= target < k:
        raise CnnkitError(f"--target {target} is not a class of this model (0..{k - 1})")
    out = Path(out)
    paths = []
    for i, name in enumerate(names):
        with torch.enable_grad():
            pred, _ = class_saliency(model, x[i : i + 1].to(device), [0])
            present = [int(c) for c in torch.unique(pred).tolist() if c != 0] or [0]
            classes = [target] if target is not None else present[:_MAX_CLASSES_SHOWN]
            pred, sal = class_saliency(model, x[i : i + 1].to(device), classes)
        panels = [(to_display(x[i]), "input"), (colourize(pred), "prediction")]
        for c, m in zip(classes, sal):
            label = class_names[c] if c < len(class_names) else str(c)
            panels.append((m.numpy() / max(float(m.max()), 1e-12), f"saliency: {label}"))
        fig = new_figure(figsize=(2.2 * len(panels), 2.4))
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
        for ax, (img, title) in zip(axes, panels):
            ax.imshow(img, cmap="gray" if title == "input" else ("inferno" if title.startswith("saliency") else None),
                      interpolation="nearest")
            ax.set_title(title[:40], fontsize=8)
            ax.axis("off")
        stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(name).stem)[:80] or "input"
        paths.append(save_figure(fig, out / f"{stem}_{i}_saliency.png"))
    return paths
