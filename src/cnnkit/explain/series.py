"""Which time steps drove a series model's prediction: attributions over time, drawn over the series.

Methods (captum, as for images): ``saliency`` (|d logit / d x|, Simonyan, Vedaldi & Zisserman 2014),
``integrated-gradients`` (Sundararajan, Taly & Yan 2017, Eq. 1, from an all-zero baseline, which after
per-series normalization is the series' mean) and ``occlusion`` (Zeiler & Fergus 2014: the drop in the
logit when a window of steps is set to 0). Each gives ``(N, C, L)``; the map over time is the largest
absolute value over channels (saliency, occlusion) or the sum over channels (integrated gradients, whose
sum over all steps equals ``logit(x) - logit(baseline)``, the completeness axiom). Padding steps get 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._text import safe_text
from ..errors import CnnkitError, did_you_mean
from ..evaluate.series_predict import load_series_inputs
from ..layers.masked_pool import padding_mask
from ..plots import new_figure, save_figure

__all__ = ["SERIES_METHODS", "attribute_series", "plot_series_attribution"]

SERIES_METHODS = ("saliency", "integrated-gradients", "occlusion")


class _ZeroPadded(nn.Module):
    """The model with padding marked NaN again: attribution methods perturb zeros, never NaN."""

    def __init__(self, model: nn.Module, mask: torch.Tensor) -> None:
        super().__init__()
        self.model, self.mask = model, mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.mask.repeat(x.shape[0] // self.mask.shape[0], 1)[:, None, :]
        return self.model(torch.where(m, x, float("nan")))


def attribute_series(
    model: nn.Module, x: torch.Tensor, method: str, *, target: int | None = None, n_steps: int = 32, window: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(attributions (N, L), targets (N,), probabilities of the targets (N,))`` for series ``x`` ``(N, C, L)``.

    Raises:
        CnnkitError: unknown method, a target out of range, or ``x`` not ``(N, C, L)``.
    """
    from captum.attr import IntegratedGradients, Occlusion, Saliency

    if method not in SERIES_METHODS:
        raise CnnkitError(f"Unknown series explain method {method!r}{did_you_mean(str(method), SERIES_METHODS)}; choose one of {', '.join(SERIES_METHODS)}")
    if x.ndim != 3:
        raise CnnkitError(f"Expected series of shape (N, C, L). Received: {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    dev = next(iter(model.parameters()), torch.empty(0)).device
    x = x.to(dev).float()
    mask = padding_mask(x)
    x0 = torch.where(mask[:, None, :], x, 0.0)
    wrapped = _ZeroPadded(model, mask)
    try:
        with torch.no_grad():
            probs = torch.softmax(wrapped(x0).float(), dim=1)
        if target is None:
            tgt = probs.argmax(1)
        else:
            if not 0 <= int(target) < probs.shape[1]:
                raise CnnkitError(f"Expected 0 <= target < {probs.shape[1]}. Received: target={target}")
            tgt = torch.full((len(x),), int(target), dtype=torch.long, device=dev)
        xi = x0.clone().requires_grad_(True)
        if method == "saliency":
            a = Saliency(wrapped).attribute(xi, target=tgt, abs=True).amax(dim=1)
        elif method == "occlusion":
            win = window or max(2, x.shape[-1] // 20)
            a = Occlusion(wrapped).attribute(
                xi, sliding_window_shapes=(x.shape[1], win), strides=(x.shape[1], max(1, win // 2)), baselines=0.0,
                target=tgt, perturbations_per_eval=8,
            ).abs().amax(dim=1)
        else:
            ig = IntegratedGradients(wrapped)
            a = ig.attribute(xi, baselines=0.0, target=tgt, n_steps=n_steps, internal_batch_size=len(x) * n_steps).sum(dim=1)
    finally:
        model.train(was_training)
    a = torch.where(mask, a.detach(), 0.0)
    return a.cpu(), tgt.cpu(), probs.gather(1, tgt[:, None])[:, 0].cpu()


def plot_series_attribution(
    series: torch.Tensor, attribution: torch.Tensor, path: str | Path, *, title: str = "", method: str = ""
) -> Path:
    """The series ``(C, L)`` (one line per channel, padding cut off) above its attribution over time."""
    real = int(padding_mask(series[None])[0].sum())
    s, a = series[:, :real].numpy(), attribution[:real].numpy()
    fig = new_figure(figsize=(8, 4))
    ax1, ax2 = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    for c in range(s.shape[0]):
        ax1.plot(s[c], lw=1)
    top = abs(a).max() or 1.0
    ax1.scatter(range(real), s[0], c=abs(a), cmap="Reds", s=8, vmin=0, vmax=top, zorder=3)
    ax1.set_ylabel("series")
    ax1.set_title(safe_text(title, 120), fontsize=9)
    ax2.bar(range(real), a, width=1.0, color=["tab:red" if v >= 0 else "tab:blue" for v in a])
    ax2.set_xlabel("time step")
    ax2.set_ylabel(method or "attribution")
    return save_figure(fig, path)


def explain_series_run(loaded: Any, inputs: list[str | Path], *, method: str, target: int | None, out: str | Path) -> list[Path]:
    """``explain`` for a series run: one PNG per input series in ``out``, plus ``attributions.json``."""
    # Windowed tasks (forecasting, anomaly) saw windows of the recorded length: explain each input's last one.
    windowed = str((loaded.info.get("task") or {}).get("name", "")) in ("forecasting", "anomaly")
    last = int((loaded.preprocessing.get("input_shape") or [1, 0])[-1]) if windowed else None
    names, x = load_series_inputs(inputs, loaded.preprocessing, last=last or None)
    attr, tgt, prob = attribute_series(loaded.model, x, method, target=target)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    classes = loaded.class_names or [str(i) for i in range(int(tgt.max()) + 1)]
    paths, record = [], []
    for i, name in enumerate(names):
        stem = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in Path(name).name).strip("_") or "input"
        label = classes[int(tgt[i])] if int(tgt[i]) < len(classes) else str(int(tgt[i]))
        title = f"{Path(name).name}: {method} for class {label} (p={float(prob[i]):.3f})"
        paths.append(plot_series_attribution(x[i], attr[i], out / f"{i:03d}-{stem}-{method}.png", title=title, method=method))
        real = int(padding_mask(x[i : i + 1])[0].sum())
        record.append({"input": safe_text(name, None), "target": int(tgt[i]), "name": label, "probability": float(prob[i]),
                       "attribution": [float(v) for v in attr[i, :real]]})
    (out / "attributions.json").write_text(json.dumps(record), encoding="utf-8")
    return paths
