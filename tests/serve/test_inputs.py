"""Request payloads: which inputs are decoded on the event loop, and the multipart file field."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit.serve.inputs import INLINE_BYTES, INLINE_JSON_BYTES, PayloadError, decode_file, is_small, multipart_file

from .serve_helpers import png_bytes, png_header_only

pytest.importorskip("python_multipart")


def test_only_cheap_inputs_count_as_small() -> None:
    assert is_small(png_bytes(np.zeros((8, 8), np.uint8)))
    assert is_small(png_bytes(np.zeros((256, 256), np.uint8)))
    assert not is_small(png_bytes(np.zeros((257, 256), np.uint8)))
    assert not is_small(png_header_only(4000, 4000))  # ~100 bytes that declare 16 megapixels: a thread decodes it
    # 400 megapixels: Pillow refuses the header itself (its decompression-bomb limit), so it fails at once.
    assert is_small(png_header_only(20_000, 20_000))
    with pytest.raises(PayloadError, match="decompression bomb|pixels") as info:
        decode_file(png_header_only(20_000, 20_000), max_pixels=1 << 30)
    assert info.value.status == 413
    assert not is_small(b"\x00" * (INLINE_BYTES + 1))
    assert is_small(b"not an image")  # decoding fails at once, with the error the client gets
    assert is_small(b"[" + b"0," * 100 + b"0]", json_body=True)
    assert not is_small(b" " * (INLINE_JSON_BYTES + 1), json_body=True)


def _body(*parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--b0undary\r\nContent-Disposition: {disp}\r\n\r\n".encode() + data + b"\r\n"
    return out + b"--b0undary--\r\n"


def test_multipart_file_is_the_file_field_whatever_the_order() -> None:
    ctype = "multipart/form-data; boundary=b0undary"
    data = bytes(range(256)) * 4  # binary content, \r\n inside included
    assert multipart_file(_body(("k", None, b"5"), ("file", "x.png", data)), ctype) == data
    with pytest.raises(PayloadError, match='named "file"') as info:
        multipart_file(_body(("file", None, b"abc")), ctype)  # a plain field, not a file
    assert info.value.status == 400
    with pytest.raises(PayloadError, match="more than 8 parts"):
        multipart_file(_body(*[("f", "x", b"a")] * 9), ctype)
    with pytest.raises(PayloadError, match="no boundary"):
        multipart_file(b"", "multipart/form-data")
