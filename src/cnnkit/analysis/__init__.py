"""Analysis of any CNN: per-layer shapes, parameters, FLOPs, receptive fields, stride fit, ERF."""

from __future__ import annotations

from .erf import ERFResult as ERFResult
from .erf import effective_receptive_field as effective_receptive_field
from .receptive_field import AxisRF as AxisRF
from .summary import FLOP_CONVENTION as FLOP_CONVENTION
from .summary import LayerRow as LayerRow
from .summary import Summary as Summary
from .summary import parse_input_shape as parse_input_shape
from .summary import summarize as summarize
from .summary import summary_for as summary_for

__all__ = [
    "FLOP_CONVENTION",
    "AxisRF",
    "ERFResult",
    "LayerRow",
    "Summary",
    "effective_receptive_field",
    "parse_input_shape",
    "summarize",
    "summary_for",
]
