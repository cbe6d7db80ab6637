"""``explain``: attribution overlays, first-layer filters or feature maps for a model and some inputs."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CnnkitError, did_you_mean
from ..evaluate.clip_inputs import is_clip_run, load_clip_inputs
from ..evaluate.predict import load_inputs
from ..evaluate.series_predict import is_series_run
from ..models import model_info
from ..plots import plot_feature_maps, plot_filters, plot_overlay
from ..runs import load_model
from ..runtime import resolve_device
from .attribution import ATTRIBUTION_METHODS, SIGNED_METHODS, _targets, attribute, last_conv_layer
from .clip import explain_clips
from .maps import feature_maps, filter_images, first_conv_layer
from .series import explain_series_run

__all__ = ["METHODS", "Explanation", "explain_model", "explain", "default_gradcam_layer"]

METHODS = ATTRIBUTION_METHODS + ("filters", "feature-maps")


@dataclass
class Explanation:
    """What :func:`explain_model` computed.

    Attributes:
        maps: ``(N, H, W)`` attributions (input size), ``(N, C, h, w)`` feature maps, or None for filters.
        targets: the class explained per input (attribution methods only).
        predicted: predicted class per input; probability: its softmax probability.
        layer: the layer used (gradcam, feature-maps, filters).
        paths: the PNGs written.
    """

    method: str
    maps: torch.Tensor | None
    targets: torch.Tensor | None
    predicted: torch.Tensor
    probability: torch.Tensor
    layer: str | None = None
    paths: list[Path] = field(default_factory=list)


def _safe_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).strip("_") or "input"


def default_gradcam_layer(model: nn.Module, info: dict[str, Any] | None = None) -> str:
    """The registry's ``gradcam_layer`` for the model named in ``model.json`` (when it names a module of
    this model), else the last Conv2d."""
    build = (info or {}).get("build") or {}
    name = build.get("name") if isinstance(build, dict) else None
    if name:
        try:

            layer = model_info(name).get("gradcam_layer")
        except CnnkitError:
            layer = None
        if layer and layer in dict(model.named_modules()):
            return str(layer)
    return last_conv_layer(model)


def explain_model(
    model: nn.Module,
    x: torch.Tensor,
    *,
    method: str,
    target: int | None = None,
    layer: str | None = None,
    class_names: list[str] | None = None,
    names: list[str] | None = None,
    out: str | Path | None = None,
    **kwargs: Any,
) -> Explanation:
    """Explain ``model``'s predictions for ``x`` ``(N, C, H, W)`` (already model input).

    Args:
        method: ``saliency``, ``smoothgrad``, ``gradcam``, ``occlusion``, ``integrated-gradients``
            (see :mod:`cnnkit.explain.attribution`), ``filters`` (first-layer kernels, one PNG) or
            ``feature-maps`` (the activations of ``layer``, default the first Conv2d, one PNG per input).
        target: class to explain (attribution methods); default the predicted class.
        layer: Grad-CAM / feature-map layer, a dotted module name; Grad-CAM defaults to the last Conv2d.
        names: one name per input, used for file names and titles.
        out: folder for the PNGs (nothing written when None).
        kwargs: passed on to :func:`cnnkit.explain.attribution.attribute`.
    """
    if method not in METHODS:
        raise CnnkitError(f"Unknown explain method {method!r}{did_you_mean(str(method), METHODS)}; choose one of {', '.join(METHODS)}")
    if x.ndim != 4:
        raise CnnkitError(f"Expected inputs of shape (N, C, H, W). Received: {tuple(x.shape)}")
    names = names or [f"input{i}" for i in range(len(x))]
    if len(names) != len(x):
        raise ValueError(f"Expected one name per input. Received: {len(names)} names for {len(x)} inputs")
    was_training = model.training
    model.eval()
    dev = next(iter(model.parameters()), torch.empty(0)).device
    try:
        _, pred, conf = _targets(model, x.to(dev), None)
    finally:
        model.train(was_training)
    k = int(pred.max()) + 1 if class_names is None else len(class_names)
    cls = class_names or [str(i) for i in range(max(k, 1))]

    def title(i: int, extra: str = "") -> str:
        return f"{names[i]}: predicted {cls[int(pred[i])]} (p={float(conf[i]):.3f}){extra}"

    paths: list[Path] = []
    outdir = Path(out) if out is not None else None
    if method == "filters":
        lname, conv = first_conv_layer(model)
        if outdir is not None:
            shown = 64
            caption = f"{lname}: {conv.out_channels} filters {tuple(conv.kernel_size)}"
            caption += f" (first {shown})" if conv.out_channels > shown else ""
            paths.append(plot_filters(filter_images(conv)[:shown], outdir / "filters.png", title=caption))
        return Explanation(method, None, None, pred.cpu(), conf.cpu(), lname, paths)
    if method == "feature-maps":
        lname, maps = feature_maps(model, x, layer)
        if outdir is not None:
            for i in range(len(x)):
                paths.append(plot_feature_maps(maps[i], outdir / f"{i:03d}-{_safe_stem(names[i])}-feature-maps.png",
                                               title=title(i, f"\nlayer {lname} {tuple(maps.shape[1:])}")))
        return Explanation(method, maps, None, pred.cpu(), conf.cpu(), lname, paths)
    lname: str | None = None  # type: ignore[no-redef]
    if method == "gradcam":
        lname = layer if layer is not None else last_conv_layer(model)
    a, tgt = attribute(model, x, method, target=target, layer=lname, **kwargs)
    a, tgt = a.cpu(), tgt.cpu()
    if outdir is not None:
        for i in range(len(x)):
            extra = f"\n{method}" + (f" @ {lname}" if lname else "") + (f", target {cls[int(tgt[i])]}" if target is not None else "")
            paths.append(plot_overlay(x[i].cpu(), a[i], outdir / f"{i:03d}-{_safe_stem(names[i])}-{method}.png",
                                      title=title(i, extra), signed=method in SIGNED_METHODS))
    return Explanation(method, a, tgt, pred.cpu(), conf.cpu(), lname, paths)


def explain(
    run_dir: str | Path,
    inputs: list[str | Path],
    *,
    method: str,
    target: int | None = None,
    layer: str | None = None,
    out: str | Path,
    device: str | None = None,
    texts: list[str] | None = None,
    report: Callable[[str], None] | None = None,
) -> list[Path]:
    """Explain a run folder's model on image / ``.npy`` inputs (or folders of them); return the PNGs.

    Inputs are converted with the preprocessing recorded in ``model.json`` (as ``cnnkit predict`` does).
    A video model's run (``kind: clip``) takes clips (``.npy`` or folders of frames) and is explained by
    :func:`cnnkit.explain.clip.explain_clips` (``saliency``, ``gradcam``, ``occlusion`` over frames).
    Grad-CAM's default layer is the registry's ``gradcam_layer`` for the model, else the last Conv2d.
    ``filters`` ignores the inputs and writes ``OUT/filters.png``. Text runs explain ``texts`` and text
    files (one input per line) token by token (:mod:`cnnkit.explain.text`; ``report`` gets one
    highlighted line per input).
    """

    if method not in METHODS:
        raise CnnkitError(f"Unknown explain method {method!r}{did_you_mean(str(method), METHODS)}; choose one of {', '.join(METHODS)}")
    if out is None:
        raise CnnkitError("explain needs an output folder (--out DIR)")
    loaded = load_model(run_dir, device=resolve_device(device))
    if (loaded.info.get("task") or {}).get("name") == "segmentation":
        from .segmentation import explain_segmentation

        return explain_segmentation(loaded, inputs, method=method, target=target, out=out)
    if is_series_run(loaded.info):  # which time steps mattered (saliency / integrated gradients / occlusion)
        return explain_series_run(loaded, inputs, method=method, target=target, out=out)
    if loaded.info.get("kind") == "text":  # token attributions (cnnkit.explain.text)
        return _explain_text_run(loaded, inputs, texts, method=method, target=target, out=out, report=report)
    if texts:
        raise CnnkitError(f"--text is for text runs; {run_dir} takes {loaded.info.get('kind', 'image')} inputs")
    model = loaded.model
    if is_clip_run(loaded.preprocessing):  # a video model: maps over the clip's frames
        names, x = load_clip_inputs(inputs, loaded.preprocessing)
        return explain_clips(model, x, method=method, target=target, layer=layer, class_names=loaded.class_names,
                             names=names, out=out, info=loaded.info).paths
    if method == "gradcam" and layer is None:
        layer = default_gradcam_layer(model, loaded.info)
    if method == "filters" and not inputs:
        x = torch.zeros((1, *loaded.preprocessing.get("input_shape", getattr(model, "input_shape", (1, 1, 1)))))
        names = ["zeros"]
    else:
        names, x = load_inputs(inputs, loaded.preprocessing)
    task = loaded.info.get("task") if isinstance(loaded.info, dict) else None
    if isinstance(task, dict) and task.get("name") == "detection":  # Grad-CAM of the top detection
        from .detection import explain_detections

        return explain_detections(model, x, names=names, class_names=loaded.class_names, out=out, method=method, layer=layer)
    result = explain_model(model, x, method=method, target=target, layer=layer, class_names=loaded.class_names,
                           names=names, out=out)
    return result.paths


def _explain_text_run(loaded: Any, inputs: list[str | Path], texts: list[str] | None, *, method: str,
                      target: int | None, out: str | Path, report: Callable[[str], None] | None) -> list[Path]:
    from ..evaluate.text import read_text_inputs
    from .text import TEXT_METHODS, explain_text

    if method not in TEXT_METHODS:
        raise CnnkitError(f"text runs are explained with {' or '.join(TEXT_METHODS)}, not {method!r}")
    items, problems = read_text_inputs(list(inputs), texts)
    if problems:
        raise CnnkitError(problems[0][1])
    if not items:
        raise CnnkitError('no text inputs: pass --text "..." or text files with one input per line')
    return explain_text(loaded, items, method=method, target=target, out=out, report=report)
