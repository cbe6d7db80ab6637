"""The models a server holds: run folders loaded once at start, exactly as ``cnnkit predict`` loads them.

Each run folder named at start becomes a :class:`ServedModel` under a short name (the folder's name, made
unique). Requests choose a model by that name only: a name is a key into this table, never a path, so no
request can make the server open a file.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .._text import safe_text
from ..data.tokenize import encode
from ..errors import CnnkitError, UnknownNameError, did_you_mean
from ..evaluate.predict import model_input
from ..evaluate.text import run_vocab
from ..explain import attribute
from ..explain.run import default_gradcam_layer
from ..runs import LoadedModel, load_model

__all__ = ["ServedModel", "gradcam_png", "load_served_models", "pick_model", "predict_raw", "probabilities", "top_k"]


@dataclass
class ServedModel:
    """One run folder's model, its preprocessing and what the page needs to know about it."""

    name: str
    run_dir: Path
    loaded: LoadedModel
    class_names: list[str]
    input_shape: tuple[int, ...]
    source_shape: tuple[int, ...] | None
    gradcam_layer: str | None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    vocab: Any = None  # a text run's vocabulary (``cnnkit.data.tokenize.Vocab``), from its model.json

    @property
    def kind(self) -> str:
        """What a request sends: ``"text"`` (strings) for a model with a vocabulary, else ``"image"``."""
        return "image" if self.vocab is None else "text"

    def to_input(self, raw: torch.Tensor, name: str = "input") -> torch.Tensor:
        """A raw ``(C, H, W)`` input as one ``(C, *hw)`` model input, converted as ``cnnkit predict`` does."""
        return model_input(raw, self.loaded.preprocessing, name)[0]

    def describe(self) -> dict[str, Any]:
        """What ``/healthz`` and the page show (strings sanitised: they come from a run folder)."""
        build = self.loaded.info.get("build") or {}
        arch = build.get("name") if isinstance(build.get("name"), str) else ("spec" if "spec" in build else None)
        return {
            "name": self.name,
            "architecture": safe_text(arch, 80) if arch else None,
            "classes": [safe_text(c, 200) for c in self.class_names],
            "input_shape": list(self.input_shape),
            "source_shape": list(self.source_shape) if self.source_shape else None,
            "gradcam": self.gradcam_layer is not None,
            "kind": self.kind,
        }


def _name_for(path: Path, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", path.resolve().name).strip("_.") or "model"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    return name


def _check_servable(run_dir: Path, loaded: LoadedModel) -> None:
    task = loaded.info.get("task")
    task_name = task.get("name") if isinstance(task, dict) else task
    kind = loaded.info.get("kind", "image")
    if task_name not in (None, "classification") or kind not in ("image", "text"):
        raise CnnkitError(
            f"{run_dir}: cnnkit serve serves image and text classifiers; this run's task is "
            f"{safe_text(task_name or 'classification', 60)} on {safe_text(kind, 40)} data (use cnnkit predict)"
        )
    if not loaded.preprocessing or not loaded.preprocessing.get("input_shape"):
        raise CnnkitError(f"{run_dir / 'model.json'} records no preprocessing; cannot convert inputs")


def load_served_models(run_dirs: list[str | Path], *, device: str | torch.device = "cpu") -> dict[str, ServedModel]:
    """Load each run folder's model (``cnnkit.runs.load_model``: safetensors + JSON, never pickle).

    Raises:
        CnnkitError: a folder that is not a run folder, or not an image classifier's.
    """
    served: dict[str, ServedModel] = {}
    for raw in run_dirs:
        run_dir = Path(raw)
        loaded = load_model(run_dir, device=device)
        _check_servable(run_dir, loaded)
        model = loaded.model.eval()
        dev = next(iter(model.parameters()), torch.empty(0)).device
        input_shape = tuple(int(v) for v in loaded.preprocessing["input_shape"])
        # A text model reads token ids; its vocabulary (JSON in model.json) turns request strings into them.
        vocab = run_vocab(loaded) if loaded.info.get("kind") == "text" else None
        with torch.no_grad():
            probe = torch.zeros((1, *input_shape), device=dev, dtype=torch.long if vocab is not None else torch.float32)
            k = int(model(probe).shape[1])
        names = list(loaded.class_names or [str(i) for i in range(k)])
        layer = None
        if vocab is None:
            try:
                layer = default_gradcam_layer(model, loaded.info)
            except CnnkitError:  # no Conv2d: Grad-CAM is not offered for this model
                layer = None
        source = loaded.preprocessing.get("source_shape")
        name = _name_for(run_dir, set(served))
        served[name] = ServedModel(
            name=name, run_dir=run_dir, loaded=loaded, class_names=names, input_shape=input_shape,
            source_shape=tuple(int(v) for v in source) if isinstance(source, list) else None,
            gradcam_layer=layer, device=dev, vocab=vocab,
        )
    return served


def pick_model(models: dict[str, ServedModel], name: str | None) -> ServedModel:
    """The model called ``name`` (the first one when None)."""
    if not models:
        raise CnnkitError("this server holds no model; start it with cnnkit serve RUN_DIR")
    if name is None or name == "":
        return next(iter(models.values()))
    if name not in models:
        clean = safe_text(name, 80)
        raise UnknownNameError(f"no model named {clean!r}{did_you_mean(clean, models)}; served: {', '.join(models)}")
    return models[name]


@torch.inference_mode()
def probabilities(model: ServedModel, x: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities ``(N, K)`` for a batch of model inputs, computed as ``cnnkit predict`` does."""
    return torch.softmax(model.loaded.model(x.to(model.device)).float(), dim=1).cpu()


def top_k(model: ServedModel, probs: torch.Tensor, k: int) -> list[dict[str, Any]]:
    """``[{"label", "index", "probability"}]`` for one row of probabilities, most probable first."""
    p, c = probs.topk(min(k, probs.shape[0]))
    return [{"label": safe_text(model.class_names[int(ci)], 200), "index": int(ci), "probability": float(pi)}
            for pi, ci in zip(p, c)]


def predict_raw(model: ServedModel, raws: list[Any]) -> list[torch.Tensor | CnnkitError]:
    """Probabilities ``(K,)`` for each raw input, or the error that input alone caused: ``(C, H, W)``
    tensors for an image model, strings for a text model (tokenized with the run's vocabulary, as
    ``cnnkit predict --text`` does).

    Inputs of one shape and dtype are preprocessed together (one resize for the whole group: the same
    operations as one at a time, done once), then every input goes through the model as one batch.
    """
    if model.vocab is not None:  # the app hands a text model strings only (decode_text)
        return list(probabilities(model, encode(raws, model.vocab)))
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, raw in enumerate(raws):
        groups.setdefault((raw.dtype, tuple(raw.shape)), []).append(i)
    out: list[torch.Tensor | CnnkitError | None] = [None] * len(raws)
    xs, order = [], []
    for idx in groups.values():
        try:
            xs.append(model_input(torch.stack([raws[i] for i in idx]), model.loaded.preprocessing, "upload"))
            order += idx
        except CnnkitError as exc:
            for i in idx:
                out[i] = exc
    if xs:
        for i, p in zip(order, probabilities(model, torch.cat(xs))):
            out[i] = p
    return out  # type: ignore[return-value]


_JET = None


def _colormap(a: np.ndarray) -> np.ndarray:
    """``a`` in [0, 1] through matplotlib's "jet" (as ``cnnkit explain`` draws Grad-CAM), as uint8 RGB."""
    global _JET
    if _JET is None:
        from matplotlib import colormaps

        _JET = (colormaps["jet"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    return _JET[np.clip((a * 255).round().astype(int), 0, 255)]


def gradcam_png(model: ServedModel, x: torch.Tensor, *, target: int | None = None, size: int = 192) -> str:
    """Grad-CAM (``cnnkit.explain``, the registry's layer) for one model input ``(C, H, W)``, drawn over a
    gray copy of the input as ``cnnkit explain`` draws it, as a ``data:image/png;base64,...`` URL."""
    if model.gradcam_layer is None:
        raise CnnkitError(f"model {model.name} has no Conv2d layer; Grad-CAM needs one")
    a, _ = attribute(model.loaded.model, x[None].to(model.device), "gradcam", target=target, layer=model.gradcam_layer)
    cam = a[0].detach().float().cpu().numpy()
    m = float(cam.max())
    cam = cam / m if m > 0 else np.zeros_like(cam)
    img = x.detach().float().cpu()
    lo, hi = float(img.min()), float(img.max())
    gray = ((img - lo) / (hi - lo) if hi > lo else torch.zeros_like(img)).mean(dim=0).numpy()
    blend = 0.5 * np.repeat(gray[..., None] * 255, 3, axis=2) + 0.5 * _colormap(cam)
    im = Image.fromarray(blend.round().clip(0, 255).astype(np.uint8), "RGB")
    h, w = cam.shape
    scale = max(1, size // max(h, w))
    im = im.resize((w * scale, h * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
