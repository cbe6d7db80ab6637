"""Training output: a rich progress bar on a terminal (epoch, step, loss, accuracy, images/s, ETA), one plain
line per epoch otherwise (CI, log files). Only rank 0 prints; ``quiet`` silences everything but errors."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["Progress", "format_epoch_line", "throughput_unit"]


def _number(row: dict[str, Any], key: str) -> float | None:
    v = row.get(key)
    return float(v) if isinstance(v, (int, float)) and v == v else None  # v == v: not NaN


# What the throughput counts, by the data's kind (``DataBundle.kind``); images unless named here.
_UNITS = {"series": "series", "text": "texts", "clip": "clips"}


def throughput_unit(kind: str | None) -> str:
    """``img`` for images, else the plural the progress line counts per second (``series/s``, ``texts/s``)."""
    return _UNITS.get(kind or "image", "img")


def format_epoch_line(row: dict[str, Any], epochs: int, unit: str = "img") -> str:
    # Only the metrics a task reports (detection has no accuracy, its validation no loss).
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['train_loss']:.4f}"]
    if (acc := _number(row, "train_accuracy")) is not None:
        parts.append(f"acc {100 * acc:.2f}%")
    # The task's other training metrics (a run without a validation split shows its progress here).
    for key in sorted(k for k in row if k.startswith("train_") and k not in ("train_loss", "train_accuracy", "train_count")):
        if (v := _number(row, key)) is not None:
            parts.append(f"{key[len('train_'):]} {v:.4f}")
    if (val_loss := _number(row, "val_loss")) is not None:
        parts.append(f"val_loss {val_loss:.4f}")
    if (val_acc := _number(row, "val_accuracy")) is not None:
        parts.append(f"val_acc {100 * val_acc:.2f}%")
    for key in sorted(k for k in row if k.startswith("val_") and k not in ("val_loss", "val_accuracy", "val_count")):
        if (v := _number(row, key)) is not None:
            parts.append(f"{key} {v:.4f}")
    parts += [f"lr {row['lr']:.3g}", f"{row['seconds']:.1f}s", f"{row['images_per_second']:.0f} {unit}/s"]
    return "  ".join(parts)


class Progress:
    """Progress reporting for one training run.

    Args:
        enabled: False on ranks other than 0 or when quiet.
        stream: where plain lines go (default stdout); a rich bar is used when it is a terminal.
    """

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stdout
        self.live = (self.stream.isatty() if live is None else live) and enabled
        self.unit = "img"  # set from the data's kind once it is built (throughput_unit)
        self._bar: Any = None
        self._task: Any = None
        self._last = 0.0

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def start_epoch(self, epoch: int, epochs: int, steps: int, done: int = 0) -> None:
        if not self.live:
            return
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]epoch {task.fields[epoch]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}  {task.fields[ips]} " + self.unit + "/s"),
                TimeRemainingColumn(),
                # Our stream (live means it is a terminal), and transient: close() erases the bar, so what
                # stays on screen is the epoch lines and the closing result, not a stale half-drawn bar.
                console=Console(file=self.stream, force_terminal=True),
                transient=True,
            )
            self._bar.start()
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task(
            "train", total=steps, completed=done, epoch=f"{epoch}/{epochs}", loss="-", acc="-", ips="-"
        )

    def want_update(self) -> bool:
        """Whether an update would be shown now (the caller can then skip computing the numbers)."""
        return self.live and time.perf_counter() - self._last > 0.2

    def update(self, step: int, *, loss: float | None = None, acc: float | None = None, ips: float | None = None) -> None:
        if not self.live or self._task is None:
            return
        self._last = time.perf_counter()
        fields = {}
        if loss is not None:
            fields["loss"] = f"{loss:.4f}"
        if acc is not None:
            fields["acc"] = f"{100 * acc:.2f}%"
        if ips is not None:
            fields["ips"] = f"{ips:.0f}"
        self._bar.update(self._task, completed=step, **fields)

    def end_epoch(self, row: dict[str, Any], epochs: int) -> None:
        if not self.enabled:
            return
        self.message(format_epoch_line(row, epochs, self.unit))

    def close(self) -> None:
        """Erase the bar (at the end of training, on an interruption or an error)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            self._task = None
