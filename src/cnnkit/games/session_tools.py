"""Small pieces the game loops share: numpy generator state <-> (JSON, tensor), and win/draw rates with
Wilson score intervals (Wilson 1927), the interval that stays inside [0, 1] for small samples."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["rng_from_meta", "rng_to_meta", "wilson_interval", "win_rate"]


def rng_to_meta(rng: np.random.RandomState) -> tuple[list[Any], torch.Tensor]:
    kind, keys, pos, has_gauss, gauss = rng.get_state()
    return [kind, int(pos), int(has_gauss), float(gauss)], torch.from_numpy(np.asarray(keys, dtype=np.int64))


def rng_from_meta(meta: list[Any], keys: torch.Tensor) -> np.random.RandomState:
    rng = np.random.RandomState()
    kind, pos, has_gauss, gauss = meta
    rng.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    return rng


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% with z = 1.96)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def win_rate(results: list[float], opponent: str) -> dict[str, float]:
    """Win and draw rates (and the win rate's 95% interval) from per-game results for our player (+1/0/-1)."""
    n = len(results)
    wins = sum(r > 0 for r in results)
    draws = sum(r == 0 for r in results)
    lo, hi = wilson_interval(wins, n)
    return {f"win_rate_vs_{opponent}": wins / n, f"draw_rate_vs_{opponent}": draws / n,
            f"win_rate_vs_{opponent}_low": lo, f"win_rate_vs_{opponent}_high": hi}
