"""Exporting trained models to interchange formats (ONNX)."""

from .onnx import NATIVE_OPSET as NATIVE_OPSET
from .onnx import export_bytes as export_bytes
from .onnx import export_onnx as export_onnx

__all__ = ["NATIVE_OPSET", "export_bytes", "export_onnx"]
