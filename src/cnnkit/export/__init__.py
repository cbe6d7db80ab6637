"""Exporting trained models to interchange formats (ONNX)."""

from .onnx import export_onnx as export_onnx

__all__ = ["export_onnx"]
