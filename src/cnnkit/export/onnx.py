"""Export a trained run to ONNX and check the exported graph against PyTorch with onnxruntime.

ONNX is the interchange format for serving (onnxruntime, TensorRT, OpenVINO); like safetensors it holds no
pickled code, so an exported model can be handed to someone else safely.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from ..errors import CnnkitError

__all__ = ["export_onnx"]


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
        opset: ONNX opset version (default: the exporter's).
        check: run the exported graph with onnxruntime on random input and compare with PyTorch.
        atol: the largest absolute difference accepted by the check.

    Returns:
        ``{"path", "input_shape", "max_abs_diff"}``.
    """
    from ..runs import load_model

    _require("onnx")
    _require("onnxscript")
    loaded = load_model(run_dir)
    model = loaded.model.eval()
    shape = tuple(int(s) for s in loaded.info.get("input_shape") or getattr(model, "input_shape", ()))
    if not shape:
        raise CnnkitError(f"{Path(run_dir) / 'model.json'} records no input_shape; cannot export")
    path = Path(out) if out is not None else Path(run_dir) / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(2, *shape)
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    # The exporter narrates every stage on stdout/stderr and warns about torchvision; keep the CLI quiet.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        try:
            torch.onnx.export(
                model,
                (example,),
                str(path),
                input_names=["input"],
                output_names=["output"],
                dynamic_shapes=({0: batch},),
                opset_version=opset,
                dynamo=True,
            )
        except Exception as exc:  # the exporter raises many types; the user needs the first line
            raise CnnkitError(f"ONNX export failed for {run_dir}: {str(exc).splitlines()[0]}") from None
    result: dict[str, Any] = {"path": str(path), "input_shape": list(shape), "max_abs_diff": None}
    if check:
        ort = _require("onnxruntime")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = torch.randn(3, *shape)
        with torch.no_grad():
            expected = model(x)
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        diff = float((torch.from_numpy(got) - expected).abs().max())
        result["max_abs_diff"] = diff
        if not diff <= atol:
            raise CnnkitError(f"exported ONNX graph disagrees with PyTorch by {diff:.3g} (> atol {atol}); file kept at {path}")
    (path.with_suffix(".json")).write_text(json.dumps({**loaded.info, "onnx": result}, indent=2))
    return result
