"""``metrics.jsonl``: one JSON object per epoch, rewritten on resume to the rows the checkpoint knew about
(so a resumed run has no duplicate rows), then appended to."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from .io import atomic_write_text, write_error

__all__ = ["MetricsLog", "TIMING_FIELDS", "json_safe"]

# Fields that depend on wall-clock time; everything else in a row is reproducible.
TIMING_FIELDS = ("seconds", "images_per_second")


def json_safe(value: Any) -> Any:
    """NaN/inf become None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


class MetricsLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def rewrite(self, rows: list[dict[str, Any]]) -> None:
        atomic_write_text(self.path, "".join(json.dumps(json_safe(r)) + "\n" for r in rows))

    def append(self, row: dict[str, Any]) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(json_safe(row)) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            # A torn last row is harmless: resuming rewrites the file from the checkpoint's rows.
            raise write_error(self.path, exc, then=f", then cnnkit train --resume {self.path.parent}") from None

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
