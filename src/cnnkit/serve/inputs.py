"""Request payloads to raw model inputs, with the same decoders ``cnnkit predict`` uses for files.

Two ways to send an input to ``POST /api/predict``:

- ``multipart/form-data`` with one file field ``file``: PNG, JPEG, BMP, WebP or ``.npy`` content, told apart
  by its bytes (:func:`cnnkit.evaluate.predict.read_bytes`; the file name the client gives is ignored);
- ``application/json``: ``{"array": <nested list>}`` or ``{"npy": "<base64 of a .npy file>"}``, in the
  ``.npy`` layouts :func:`cnnkit.evaluate.predict.array_items` accepts (uint8 0..255 or float 0..1).

Every failure is a :class:`PayloadError` with the HTTP status to answer with; nothing here touches the
file system.

:func:`is_small` tells the server which inputs are cheap enough to decode on the event loop: for a small
image (a drawn digit is a few hundred bytes) a hand-off to a thread costs more than the decoding itself.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any

import numpy as np
import torch
from PIL import Image

from .._text import safe_text
from ..errors import CnnkitError
from ..evaluate.predict import array_items, read_bytes

__all__ = ["INLINE_BYTES", "INLINE_JSON_BYTES", "INLINE_PIXELS", "PayloadError", "decode_file", "decode_json", "decode_text",
           "is_small", "multipart_file"]

# Below these, decoding takes well under a millisecond (a 256x256 PNG: ~0.3 ms), less than a hand-off to a
# worker thread and back under load; above them it runs on a thread so the event loop keeps serving.
INLINE_BYTES = 64 << 10
INLINE_PIXELS = 256 * 256
INLINE_JSON_BYTES = 16 << 10  # a 32x32x3 array as JSON is ~10 KB; parsing nested lists costs more per byte
_MAX_PARTS = 8


class PayloadError(CnnkitError):
    """A request the server refuses: ``status`` is the HTTP status (400, 413, 415, 422)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def is_small(data: bytes, *, json_body: bool = False) -> bool:
    """Whether decoding ``data`` is cheap: at most :data:`INLINE_BYTES` bytes (:data:`INLINE_JSON_BYTES` for
    a JSON body) and, for an image, a header
    that declares at most :data:`INLINE_PIXELS` pixels (read without decoding any; a tiny PNG can declare
    gigapixels). Content Pillow cannot identify counts as small: decoding it fails at once."""
    if len(data) > (INLINE_JSON_BYTES if json_body else INLINE_BYTES):
        return False
    if json_body or data[:6] == b"\x93NUMPY":
        return True
    try:
        with Image.open(io.BytesIO(data), formats=("PNG", "JPEG", "BMP", "WEBP")) as im:
            return im.width * im.height <= INLINE_PIXELS
    except Exception:  # noqa: BLE001 - any header Pillow refuses: decode_file names the problem, quickly
        return True


def multipart_file(body: bytes, content_type: str) -> bytes:
    """The content of the field ``file`` of a ``multipart/form-data`` body held in memory.

    Parsed with python-multipart's streaming parser (what Starlette's form parser is built on) fed from
    memory: Starlette's form API would copy each part into a temporary file object, and the body was read
    and bounded already.
    """
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise PayloadError("malformed multipart body: no boundary in the Content-Type header", 400)
    parts: list[tuple[bytes, list[bytes]]] = []  # (Content-Disposition, data chunks) per part
    field, value, disposition = bytearray(), bytearray(), [b""]

    def on_part_begin() -> None:
        if len(parts) >= _MAX_PARTS:
            raise PayloadError(f"malformed multipart body: more than {_MAX_PARTS} parts", 400)
        disposition[0] = b""
        parts.append((b"", []))

    def on_header_end() -> None:
        if bytes(field).lower() == b"content-disposition":
            disposition[0] = bytes(value)
        field.clear()
        value.clear()

    def on_headers_finished() -> None:
        parts[-1] = (disposition[0], parts[-1][1])

    callbacks: Any = {
        "on_part_begin": on_part_begin,
        "on_header_field": lambda d, s, e: field.extend(d[s:e]),
        "on_header_value": lambda d, s, e: value.extend(d[s:e]),
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": lambda d, s, e: parts[-1][1].append(d[s:e]),
    }
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except PayloadError:
        raise
    except Exception as exc:  # noqa: BLE001 - python-multipart's MultipartParseError and friends
        raise PayloadError(f"malformed multipart body: {safe_text(exc, 160)}", 400) from None
    for disp, chunks in parts:
        _, opts = parse_options_header(disp)
        if opts.get(b"name") == b"file" and b"filename" in opts:
            return b"".join(chunks)
    raise PayloadError('expected a multipart file field named "file"', 400)


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


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise PayloadError(f"malformed JSON body: {safe_text(exc, 120)}", 400) from None


def decode_text(body: bytes) -> str:
    """A text model's JSON body, ``{"text": "..."}``, as the string to classify (tokenized later with the
    run's vocabulary; its length is bounded by the server's body limit)."""
    doc = _json_body(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
        raise PayloadError('this model reads text: send a JSON object {"text": "..."}', 422)
    if not doc["text"].strip():
        raise PayloadError('"text" is empty', 422)
    return str(doc["text"])


def decode_json(body: bytes, *, max_pixels: int) -> torch.Tensor:
    """A JSON body (``{"array": ...}`` or ``{"npy": "<base64>"}``) as a raw ``(C, H, W)`` tensor."""
    doc = _json_body(body)
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
