"""Export a trained run to ONNX and check the exported graph against PyTorch with onnxruntime.

ONNX is the interchange format for serving (onnxruntime, TensorRT, OpenVINO); like safetensors it holds no
pickled code, so an exported model can be handed to someone else safely.

Opsets: torch's exporter (``dynamo=True``) implements ONNX opset 18 and newer. For an older opset it exports
18 and asks the ONNX version converter to go down, which works for some models and not others; when it
fails, torch logs a traceback and keeps opset 18. cnnkit therefore reads the opset back from the written
file and refuses (one line, file removed) unless it is the one requested; opsets newer than the installed
``onnx`` package knows are refused before exporting.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._text import safe_text
from ..errors import CnnkitError
from ..models.detection import FasterRCNN, rois_of
from ..runs import atomic_write_text, load_model
from .detection import ProposerGraph, detect_with_onnx, export_detector

__all__ = ["NATIVE_OPSET", "export_bytes", "export_onnx"]

# The oldest opset torch's exporter writes without a version conversion (torch.onnx's TORCHLIB_OPSET).
NATIVE_OPSET = 18
# Loggers that narrate (and on a failed opset conversion print a traceback while carrying on); cnnkit
# checks the outcome itself and reports it in one line.
_EXPORT_LOGGERS = ("torch.onnx", "torch.export", "onnxscript")


@contextlib.contextmanager
def _quiet_exporter() -> Any:
    """Silence the exporter's stdout, warnings and loggers for the duration, then restore them."""
    loggers = [logging.getLogger(name) for name in _EXPORT_LOGGERS]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.CRITICAL + 1)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def _check_opset(opset: int | None) -> None:
    if opset is None:
        return
    import onnx.defs

    newest = int(onnx.defs.onnx_opset_version())
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 1:
        raise CnnkitError(f"Expected --opset to be a positive integer. Received: {opset!r}")
    if opset > newest:
        raise CnnkitError(
            f"opset {opset} is newer than the installed onnx package supports (newest: {newest}); "
            f"use {NATIVE_OPSET} to {newest}"
        )


def _written_opset(path: Path) -> int | None:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise CnnkitError(f"ONNX export needs the '{module}' package; install it with: pip install 'cnnkit[export]'") from None


def export_onnx(
    run_dir: str | Path,
    *,
    out: str | Path | None = None,
    opset: int | None = None,
    check: bool = True,
    atol: float = 1e-4,
) -> dict[str, Any]:
    """Export ``RUN_DIR``'s model to ONNX with a dynamic batch dimension.

    Args:
        run_dir: a run folder (``model.json`` + ``model.safetensors``).
        out: the ``.onnx`` path (default ``RUN_DIR/model.onnx``).
        opset: ONNX opset version (default: the exporter's, 18). Older than 18 only where the ONNX version
            converter manages this model; the file written always has the opset reported in the result.
        check: run the exported graph with onnxruntime on random input and compare with PyTorch.
        atol: the largest absolute difference accepted by the check.

    Returns:
        ``{"path", "input_shape", "opset", "max_abs_diff"}``; a Faster R-CNN run is written as two graphs
        (:mod:`cnnkit.export.detection`: ``path`` holds the backbone and RPN head, ``head_path`` the RoI
        pooling and box head) and checked end to end, its Python proposal selection and NMS between them.

    Raises:
        CnnkitError: a missing package, an opset that cannot be written, any exporter failure (one line),
            or an exported graph that disagrees with PyTorch.
    """

    _require("onnx")
    _require("onnxscript")
    _check_opset(opset)
    loaded = load_model(run_dir)
    task = loaded.info.get("task") if isinstance(loaded.info, dict) else None
    detection = isinstance(task, dict) and task.get("name") == "detection"
    model = loaded.model.eval()
    if detection and not isinstance(model, FasterRCNN):
        raise CnnkitError(f"{run_dir}: only Faster R-CNN detectors are exported to ONNX; received {type(model).__name__}")
    shape = tuple(int(s) for s in loaded.info.get("input_shape") or getattr(model, "input_shape", ()))  # type: ignore[union-attr]
    if not shape:
        raise CnnkitError(f"{Path(run_dir) / 'model.json'} records no input_shape; cannot export")
    path = Path(out) if out is not None else Path(run_dir) / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    paths = [path]
    if detection:
        # Two graphs around the data-dependent proposal selection and NMS (cnnkit.export.detection).
        with _quiet_exporter():
            try:
                paths = export_detector(model, _example(model, shape, 2), path, opset)  # type: ignore[arg-type]  # checked above
            except Exception as exc:  # the exporter raises many types; the user needs the first line
                raise CnnkitError(f"ONNX export failed for {run_dir}: {_first_line(exc)}") from None
    else:
        _export(model, shape, str(path), opset=opset, what=str(run_dir))
    try:
        written = min(w for w in (_written_opset(p) for p in paths) if w is not None)
    except Exception as exc:  # noqa: BLE001 - whatever the reader raises, the file is unusable
        for p in paths:
            p.unlink(missing_ok=True)
        raise CnnkitError(f"ONNX export failed for {run_dir}: the written file is unreadable ({_first_line(exc)})") from None
    if opset is not None and written != opset:
        for p in paths:
            p.unlink(missing_ok=True)
        raise CnnkitError(
            f"opset {opset} is not supported by torch's exporter for this model (it writes opset {NATIVE_OPSET} "
            f"and newer; converting down to {opset} failed); use --opset {NATIVE_OPSET} or newer"
        )
    result: dict[str, Any] = {"path": str(path), "input_shape": list(shape), "opset": written, "max_abs_diff": None}
    if detection:
        result["head_path"] = str(paths[1])
    if check and detection:
        result["max_abs_diff"] = _check_detector(model, paths, shape, atol)  # type: ignore[arg-type]
    elif check:
        ort = _require("onnxruntime")
        x = _example(model, shape, 3)
        with torch.no_grad():
            expected = model(x)
        try:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types; one line for the user
            raise CnnkitError(f"onnxruntime cannot run the exported {path} (opset {written}): {_first_line(exc)}") from None
        diff = float((torch.from_numpy(got) - expected).abs().max())
        result["max_abs_diff"] = diff
        if not diff <= atol:
            raise CnnkitError(f"exported ONNX graph disagrees with PyTorch by {diff:.3g} (> atol {atol}); file kept at {path}")
    atomic_write_text(path.with_suffix(".json"), json.dumps({**loaded.info, "onnx": result}, indent=2))
    return result


def _export(model: torch.nn.Module, shape: tuple[int, ...], f: str | None, *, opset: int | None, what: str) -> Any:
    """torch's exporter with a dynamic batch dimension, quiet; writes ``f`` (None: returns the program)."""
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    # The exporter narrates every stage on stdout/stderr and warns about torchvision; keep the CLI quiet.
    with _quiet_exporter():
        try:
            return torch.onnx.export(
                model,
                (_example(model, shape, 2),),
                f,
                input_names=["input"],
                output_names=["output"],
                dynamic_shapes=({0: batch},),
                opset_version=opset,
                dynamo=True,
            )
        except Exception as exc:  # the exporter raises many types; the user needs the first line
            raise CnnkitError(f"ONNX export failed for {what}: {_first_line(exc)}") from None


def export_bytes(model: torch.nn.Module, input_shape: tuple[int, ...], *, what: str = "the model") -> bytes:
    """``model`` (in eval mode) as ONNX bytes, exported exactly as :func:`export_onnx` writes it, in memory:
    the onnxruntime inference backend's fallback when a run folder has no ``model.onnx``."""
    _require("onnx")
    _require("onnxscript")
    program = _export(model.eval(), input_shape, None, opset=None, what=what)
    return bytes(program.model_proto.SerializeToString())


def _check_detector(model: FasterRCNN, paths: list[Path], shape: tuple[int, ...], atol: float) -> float:
    """Run both graphs with onnxruntime (and the Python steps between them) on random images; the largest
    difference from PyTorch over the proposer's outputs, the head's outputs on the same RoIs and the final
    detections (compared where both found the same number of boxes)."""
    ort = _require("onnxruntime")
    x = _example(model, shape, 3)
    try:
        proposer, head = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in paths)
        dets, raw = detect_with_onnx(proposer, head, model, x.numpy())
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types; one line for the user
        raise CnnkitError(f"onnxruntime cannot run the exported {paths[0]}: {_first_line(exc)}") from None
    with torch.no_grad():
        expected = dict(zip(("features", "rpn_logits", "rpn_deltas", "anchors"), ProposerGraph(model)(x)))
        size = (int(shape[-2]), int(shape[-1]))
        proposals = model.rpn.propose(expected["rpn_logits"], expected["rpn_deltas"], expected["anchors"], size)
        rois = rois_of(proposals, x)
        cls, box = model.roi_heads.predict_rois(expected["features"], rois)
        got_cls, got_box = head.run(None, {"features": expected["features"].numpy(), "rois": rois.numpy()})
        want = model(x)
    diffs = [float(np.abs(raw[k] - v.numpy()).max()) for k, v in expected.items()]
    diffs += [float(np.abs(got_cls - cls.numpy()).max()) if len(rois) else 0.0, float(np.abs(got_box - box.numpy()).max()) if len(rois) else 0.0]
    found, wanted = (dets[..., 5] >= 0).sum(1), (want[..., 5] >= 0).sum(1)
    same = found == wanted
    if same.any():
        diffs.append(float((dets[same] - want[same]).abs().max()))
    diff = max(diffs)
    if not diff <= atol or not bool(same.all()):
        raise CnnkitError(
            f"exported ONNX detector disagrees with PyTorch by {diff:.3g} (atol {atol}; boxes per image "
            f"{found.tolist()} vs {wanted.tolist()}); files kept at {paths[0]} and {paths[1]}"
        )
    return diff


def _example(model: torch.nn.Module, shape: tuple[int, ...], n: int) -> torch.Tensor:
    """Random model input: floats, or token ids below the model's ``vocab_size`` for models of ids."""
    if getattr(model, "input_dtype", torch.float32) == torch.long:
        return torch.randint(0, int(getattr(model, "vocab_size", 2)), (n, *shape))
    return torch.randn(n, *shape)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return safe_text(text.splitlines()[0] if text else type(exc).__name__, 300)
