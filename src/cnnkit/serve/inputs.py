"""Request payloads to raw model inputs, with the same decoders ``cnnkit predict`` uses for files.

Two ways to send an input to ``POST /api/predict``:

- ``multipart/form-data`` with one file field ``file``: PNG, JPEG, BMP, WebP or ``.npy`` content, told apart
  by its bytes (:func:`cnnkit.evaluate.predict.read_bytes`; the file name the client gives is ignored);
- ``application/json``: ``{"array": <nested list>}`` or ``{"npy": "<base64 of a .npy file>"}``, in the
  ``.npy`` layouts :func:`cnnkit.evaluate.predict.array_items` accepts (uint8 0..255 or float 0..1).

Every failure is a :class:`PayloadError` with the HTTP status to answer with; nothing here touches the
file system.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import numpy as np
import torch

from .._text import safe_text
from ..errors import CnnkitError
from ..evaluate.predict import array_items, read_bytes

__all__ = ["PayloadError", "decode_file", "decode_json"]


class PayloadError(CnnkitError):
    """A request the server refuses: ``status`` is the HTTP status (400, 413, 415, 422)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def _one(items: list[tuple[str, torch.Tensor]]) -> torch.Tensor:
    if len(items) != 1:
        raise PayloadError(f"expected one input per request. Received: a batch of {len(items)}")
    return items[0][1]


def decode_file(data: bytes, *, max_pixels: int) -> torch.Tensor:
    """One uploaded file's content as a raw ``(C, H, W)`` tensor."""
    if not data:
        raise PayloadError("the uploaded file is empty", 400)
    try:
        return _one(read_bytes(data, "upload", max_pixels=max_pixels))
    except PayloadError:
        raise
    except CnnkitError as exc:
        msg = safe_text(exc, 300)
        # read_bytes' own wording: its pixel limit, Pillow's decompression-bomb limit, undecodable content.
        if "more than the limit of" in msg or "decompression bomb" in msg.lower():
            raise PayloadError(msg, 413) from None
        if "not a valid" in msg:
            raise PayloadError(f"{msg}; send a PNG, JPEG, BMP, WebP or .npy file", 415) from None
        raise PayloadError(msg, 422) from None


def decode_json(body: bytes, *, max_pixels: int) -> torch.Tensor:
    """A JSON body (``{"array": ...}`` or ``{"npy": "<base64>"}``) as a raw ``(C, H, W)`` tensor."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise PayloadError(f"malformed JSON body: {safe_text(exc, 120)}", 400) from None
    if not isinstance(doc, dict) or ("array" in doc) == ("npy" in doc):
        raise PayloadError('expected a JSON object with one of "array" (a nested list) or "npy" (base64 of a .npy file)', 400)
    if "npy" in doc:
        if not isinstance(doc["npy"], str):
            raise PayloadError('"npy" must be a base64 string of a .npy file', 400)
        try:
            data = base64.b64decode(doc["npy"], validate=True)
        except (binascii.Error, ValueError):
            raise PayloadError('"npy" is not valid base64', 400) from None
        if not data.startswith(b"\x93NUMPY"):
            raise PayloadError('"npy" does not hold a .npy file (numpy.save writes one)', 422)
        try:
            return _one(read_bytes(data, "npy", max_pixels=max_pixels))
        except PayloadError:
            raise
        except CnnkitError as exc:
            raise PayloadError(safe_text(exc, 300), 422) from None
    return _one(_array(doc["array"], max_pixels))


def _array(value: Any, max_pixels: int) -> list[tuple[str, torch.Tensor]]:
    if not isinstance(value, list):
        raise PayloadError('"array" must be a nested list of numbers', 422)
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        raise PayloadError('"array" is ragged: every row must have the same length', 422) from None
    if arr.dtype.kind not in "uif":  # bools, strings, nulls, mixed objects
        raise PayloadError(f'"array" must hold numbers only (found {"true/false" if arr.dtype.kind == "b" else "other values"})', 422)
    if arr.size > max_pixels * 4:
        raise PayloadError(f'"array" holds {arr.size} values: more than the limit of {max_pixels * 4}', 413)
    try:
        return array_items(arr, "array")
    except CnnkitError as exc:
        raise PayloadError(safe_text(exc, 300), 422) from None
