"""Run folders for the serve tests: the evaluate tests' tiny digits CNN (trained in ~1 s), plus the files
a training run leaves (metrics.jsonl, summary.json, a plot, the run marker), and a PNG-encoding helper."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from cnnkit.runs import RUN_MARKER

from ..evaluate.eval_helpers import make_run


def make_serve_run(path: Path, *, steps: int = 80, seed: int = 0, epochs: int = 4, finished: bool = True) -> Path:
    make_run(path, steps=steps, seed=seed)
    (path / RUN_MARKER).write_text(json.dumps({"format": "cnnkit-run/1"}), encoding="utf-8")
    rows = [{"epoch": e, "train_loss": 2.0 / e + seed * 0.1, "train_accuracy": 1 - 0.5 / e, "lr": 0.05, "seconds": 0.2}
            for e in range(1, epochs + 1)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    if finished:
        (path / "summary.json").write_text(json.dumps({
            "task": "classification", "test_accuracy": 0.9, "epochs": epochs, "wall_seconds": 1.5,
            "model": "spec", "dataset": "digits"}), encoding="utf-8")
    (path / "plots").mkdir(exist_ok=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path / "plots" / "learning_curves.png")
    (path / "env.json").write_text(json.dumps({"time": f"2026-01-0{seed + 1}T00:00:00+00:00"}), encoding="utf-8")
    return path


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` gray pixels, with one tiny IDAT: a decompression
    bomb's calling card (a few hundred bytes that would decode to gigabytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")
