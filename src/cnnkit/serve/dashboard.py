"""The runs dashboard's data: the run folders under one folder named at start, read on request.

A request names a run by its id (its path below the root, as :func:`cnnkit.runs.listing.list_runs`
reports it) and a plot by its file name; both are only looked up in what a fresh scan of the root
found, never joined to a path, so nothing outside the run folders under the root can be read. Symbolic
links to folders are not followed and plots that are symbolic links are not listed.

The misclassified test images and the confusion matrix are computed on demand with
:mod:`cnnkit.evaluate` (the run's own test split, rebuilt from ``config.yaml`` with the model's recorded
preprocessing, as ``cnnkit evaluate`` does) and cached until the run's weights change.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .._text import safe_text
from ..errors import CnnkitError, UnknownNameError, did_you_mean
from ..runs.listing import RunInfo, list_runs, read_metrics, read_summary

__all__ = ["Dashboard", "page_text"]

_MAX_CONFIG = 1 << 20
_MAX_PLOT = 16 << 20
_CACHE_RUNS = 8


def page_text(text: str, max_len: int = 200_000) -> str:
    """Multi-line text from a run folder, each line :func:`~cnnkit._text.safe_text`-clean (escape sequences
    and control characters removed, line breaks kept). HTML escaping is the page's job: it inserts every
    string as text (``textContent``), never as markup."""
    return "\n".join(safe_text(line, None) for line in text[:max_len].splitlines())


def _clean(value: Any) -> Any:
    """Strings in JSON read from a run folder, cleaned the same way (keys too)."""
    if isinstance(value, str):
        return safe_text(value, 2000)
    if isinstance(value, dict):
        return {safe_text(k, 200): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _png_url(img_u8: np.ndarray, scale: int = 4) -> str:
    im = Image.fromarray(img_u8, "L" if img_u8.ndim == 2 else "RGB")
    im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _display(x: torch.Tensor, mean: list[float] | None, std: list[float] | None) -> np.ndarray:
    """A normalized model input ``(C, H, W)`` back on the 0..255 scale (as uint8 ``(H, W)`` or ``(H, W, 3)``)."""
    x = x.float().cpu()
    if mean is not None and std is not None and len(mean) == len(std) == x.shape[0]:
        x = x * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
        a = (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    else:  # unknown normalization: min-max, as cnnkit explain shows inputs
        lo, hi = float(x.min()), float(x.max())
        a = (((x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)) * 255).round().to(torch.uint8).numpy()
    return a[0] if a.shape[0] == 1 else np.transpose(a[:3], (1, 2, 0))


class Dashboard:
    """The run folders under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise CnnkitError(f"runs folder not found: {self.root}")
        self._errors_cache: dict[tuple[str, float], dict[str, Any]] = {}

    def runs(self, sort: str = "started") -> list[RunInfo]:
        return list_runs(self.root, sort=sort)

    def find(self, run_id: str) -> RunInfo:
        """The run with this id in a fresh scan (the id is compared, never used as a path)."""
        runs = {r.id: r for r in self.runs()}
        if run_id not in runs:
            clean = safe_text(run_id, 120)
            raise UnknownNameError(f"no run {clean!r} under the runs folder{did_you_mean(clean, runs)}")
        return runs[run_id]

    def listing(self) -> list[dict[str, Any]]:
        return [self._info(r) for r in self.runs()]

    @staticmethod
    def _info(r: RunInfo) -> dict[str, Any]:
        d = r.as_dict()
        d.pop("path")  # the page needs no local paths
        return _clean(d)

    def detail(self, run_id: str) -> dict[str, Any]:
        r = self.find(run_id)
        cfg = r.path / "config.yaml"
        config = ""
        try:
            if cfg.is_file() and cfg.stat().st_size <= _MAX_CONFIG:
                config = page_text(cfg.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            pass
        summary = read_summary(r.path)
        return {"run": self._info(r), "config": config, "summary": _clean(summary), "metrics": _clean(read_metrics(r.path))}

    def plot(self, run_id: str, name: str) -> bytes:
        r = self.find(run_id)
        if name not in r.plots:
            raise UnknownNameError(f"run {safe_text(run_id, 120)} has no plot {safe_text(name, 80)!r}; plots: {', '.join(r.plots) or 'none'}")
        # The file is the one the scan listed (a plain file in the run's plots/ folder), found by name match.
        found = [p for p in (r.path / "plots").iterdir() if p.name == name]
        try:
            if len(found) != 1 or found[0].is_symlink() or found[0].stat().st_size > _MAX_PLOT:
                raise CnnkitError(f"plot {safe_text(name, 80)} is not a plain file under 16 MB")
            return found[0].read_bytes()
        except OSError:  # removed since the scan
            raise UnknownNameError(f"run {safe_text(run_id, 120)} has no plot {safe_text(name, 80)!r} any more") from None

    def errors(self, run_id: str, *, limit: int = 24) -> dict[str, Any]:
        """The confusion matrix of the run's test split and its ``limit`` most confidently misclassified
        images with their top-3 (compute-heavy: call it on the model thread)."""
        r = self.find(run_id)
        if not r.has_model:
            raise CnnkitError(f"run {safe_text(run_id, 120)} has no model yet (model.safetensors is written when training ends)")
        stamp = (r.path / "model.safetensors").stat().st_mtime
        key = (r.id, stamp)
        if key not in self._errors_cache:
            if len(self._errors_cache) >= _CACHE_RUNS:
                self._errors_cache.pop(next(iter(self._errors_cache)))
            self._errors_cache[key] = _compute_errors(r.path, keep=max(limit, 64))
        out = dict(self._errors_cache[key])
        out["misclassified"] = out["misclassified"][:limit]
        return out


@torch.inference_mode()
def _compute_errors(run_dir: Path, *, keep: int) -> dict[str, Any]:
    from ..evaluate import confusion_matrix, tta_log_probs
    from ..runs import load_model, load_run_data, split_batches, split_loader

    loaded = load_model(run_dir)
    task = loaded.info.get("task")
    name = task.get("name") if isinstance(task, dict) else task
    kind = loaded.info.get("kind", "image")
    pre_kind = (loaded.preprocessing or {}).get("kind", "image")
    if name not in (None, "classification") or kind != "image" or pre_kind != "image":
        # Masks, boxes, series, text, clips, agents: none is an image with one class to get wrong.
        what = safe_text(name or "classification", 40) + ("" if kind == "image" else f" on {safe_text(kind, 40)} data")
        raise CnnkitError(f"run {safe_text(run_dir.name, 120)}: misclassified images are shown for image classification runs only; "
                          f"this is a {what} run")
    run = load_run_data(run_dir, loaded)
    loader = split_loader(run, "test")
    pre = loaded.preprocessing
    model = loaded.model.eval()
    labels, preds, kept = [], [], []  # kept: (confidence, index, image, top-3)
    index = 0
    for x, y in split_batches(loader, pre, batch_size=256):
        probs = tta_log_probs(model, x, "none").exp().float()
        y = torch.as_tensor(y).long()
        conf, pred = probs.max(dim=1)
        labels.append(y)
        preds.append(pred)
        for i in (pred != y).nonzero().flatten().tolist():
            p3, c3 = probs[i].topk(min(3, probs.shape[1]))
            kept.append((float(conf[i]), index + i, x[i].clone(), int(y[i]), list(zip(c3.tolist(), p3.tolist()))))
        kept = sorted(kept, key=lambda e: -e[0])[:keep]
        index += len(y)
    names = [safe_text(n, 200) for n in (run.class_names or [str(i) for i in range(probs.shape[1])])]
    y_all, p_all = torch.cat(labels).numpy(), torch.cat(preds).numpy()
    cm = confusion_matrix(y_all, p_all, len(names))
    mean, std = pre.get("mean"), pre.get("std")
    return {
        "class_names": names,
        "count": int(len(y_all)),
        "accuracy": float((y_all == p_all).mean()) if len(y_all) else None,
        "confusion": cm.tolist(),
        "misclassified": [
            {"index": idx, "label": names[lab], "image": _png_url(_display(img, mean, std)),
             "top": [{"label": names[c], "index": c, "probability": p} for c, p in top]}
            for _, idx, img, lab, top in kept
        ],
    }
