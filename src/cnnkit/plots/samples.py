"""Generated samples as one tiled picture: exact pixels (no figure, no resampling), written with Pillow."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = ["save_image_grid", "tile_images"]


def tile_images(images: torch.Tensor, *, cols: int | None = None, pad: int = 2, value: float = 1.0) -> np.ndarray:
    """``(N, C, H, W)`` images in [0, 1] as one uint8 ``(rows * (H + pad) + pad, ...)`` grid (``C`` = 1 or 3).

    Example:
        >>> tile_images(torch.zeros(5, 1, 4, 4), cols=3, pad=1).shape
        (11, 16)
    """
    x = images.detach().float().clamp(0, 1).cpu()
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"Expected (N, 1 or 3, H, W) images. Received: {tuple(images.shape)}")
    n, c, h, w = x.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = torch.full((c, rows * (h + pad) + pad, cols * (w + pad) + pad), float(value))
    for i in range(n):
        r, k = divmod(i, cols)
        grid[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + k * (w + pad) : pad + k * (w + pad) + w] = x[i]
    arr = (grid * 255).round().to(torch.uint8).numpy()
    return arr[0] if c == 1 else np.transpose(arr, (1, 2, 0))


def save_image_grid(images: torch.Tensor, path: str | Path, *, cols: int | None = None) -> Path:
    """Write :func:`tile_images` of ``images`` (in [0, 1]) to a PNG file; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(tile_images(images, cols=cols)).save(path, format="PNG")
    return path
