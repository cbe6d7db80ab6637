"""Suite-wide settings: headless plots, and one torch thread per xdist worker (two workers on two cores
would otherwise fight over the same cores and run slower than one)."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
