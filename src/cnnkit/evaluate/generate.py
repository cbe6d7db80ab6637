"""``cnnkit generate RUN``: images from a trained generator (a ``task: gan`` run), as a PNG grid or an array."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .._text import safe_text
from ..errors import CnnkitError
from ..runs import load_model, write_error

__all__ = ["MAX_SAMPLES", "generate", "generate_run", "refuse_unsupervised_run"]

MAX_SAMPLES = 100_000
_SUFFIXES = (".png", ".npy")


def refuse_unsupervised_run(info: dict, run_dir: str | Path, command: str) -> None:
    """One line for ``evaluate`` / ``predict`` on a run whose task has no classes (gan, masked_autoencoder)."""
    task = info.get("task") if isinstance(info.get("task"), dict) else {}
    name = task.get("name")  # type: ignore[union-attr]
    if name in ("gan", "masked_autoencoder"):
        # These tasks' test figures (FID, reconstruction loss) are measured at the end of training.
        hint = "; cnnkit generate RUN draws samples" if name == "gan" else ""
        raise CnnkitError(
            f"cnnkit {command} works on classifiers; {safe_text(run_dir, 200)} is a {name} run: its test metrics "
            f"are in its summary.json{hint}"
        )


def generate(model: torch.nn.Module, n: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` images in [0, 1] from a GAN module (``generate``) in eval mode; codes from a CPU generator seeded
    with ``seed``, so the same seed gives the same images on any device."""
    if not hasattr(model, "generate"):
        raise CnnkitError("this run's model has no generator (cnnkit generate needs a run of task gan)")
    was_training = model.training
    model.eval()
    with torch.no_grad():
        images = (model.generate(n, generator=torch.Generator().manual_seed(seed)).float() + 1) / 2  # type: ignore[operator]
    model.train(was_training)
    return images.clamp(0, 1).cpu()


def generate_run(run_dir: str | Path, *, n: int = 64, seed: int = 0, out: str | Path) -> Path:
    """Write ``n`` generated images of the run in ``run_dir`` to ``out``: ``.png`` (one tiled grid, exact
    pixels) or ``.npy`` (float32 ``(n, C, H, W)`` in [0, 1], saved without pickle). Returns ``out``.

    Raises:
        CnnkitError: a bad ``n`` or suffix (before anything is read), not a GAN run, an unwritable ``out``.
    """
    from ..plots import save_image_grid

    out = Path(out)
    if out.suffix.lower() not in _SUFFIXES:
        raise CnnkitError(f"--out {safe_text(out, 200)}: expected a .png or .npy file name")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        raise CnnkitError(f"--n: expected 1 <= n <= {MAX_SAMPLES}. Received: {n!r}")
    loaded = load_model(run_dir)
    images = generate(loaded.model, n, seed=seed)
    try:
        if out.suffix.lower() == ".png":
            save_image_grid(images, out)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            np.save(out, images.numpy().astype(np.float32), allow_pickle=False)
    except OSError as exc:
        raise write_error(out, exc) from None
    return out
