"""Figures: every plot writes a PNG, and none of them touches matplotlib's process-wide state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from cnnkit.plots import (
    confusion_matrix_text,
    plot_confusion_matrix,
    plot_feature_maps,
    plot_filters,
    plot_image_grid,
    plot_learning_curves,
    plot_overlay,
    plot_reliability,
    to_display,
)

PNG = b"\x89PNG\r\n\x1a\n"


def test_every_plot_writes_a_png(tmp_path: Path) -> None:
    rows = [{"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 0.5 + e / 10, "val_loss": None} for e in (1, 2, 3)]
    assert plot_learning_curves([], tmp_path / "none.png") is None
    paths = [
        plot_learning_curves(rows, tmp_path / "curves.png"),
        plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["a", "b"], tmp_path / "cm.png"),
        plot_reliability({"edges": np.linspace(0, 1, 11), "accuracy": [None] * 5 + [0.6] * 5,
                          "confidence": [None] * 5 + [0.7] * 5}, tmp_path / "rel.png", ece=0.1),
        plot_image_grid([torch.rand(1, 8, 8), torch.rand(3, 8, 8)], ["x", "y"], tmp_path / "grid.png", suptitle="s"),
        plot_overlay(torch.rand(1, 8, 8), torch.randn(8, 8), tmp_path / "ov.png", title="t", signed=True),
        plot_filters(torch.rand(5, 1, 3, 3), tmp_path / "f.png", title="conv1"),
        plot_feature_maps(torch.rand(7, 4, 4), tmp_path / "fm.png", title="t"),
    ]
    for p in paths:
        assert p is not None and p.read_bytes()[:8] == PNG


def test_confusion_text_and_display_scaling() -> None:
    text = confusion_matrix_text(np.array([[12, 0], [1, 3]]), ["cat", "dog"])
    assert text.splitlines()[1].split() == ["cat", "12", "0"]
    d = to_display(torch.tensor([[[2.0, 4.0], [6.0, 10.0]]]))
    np.testing.assert_allclose(d, [[0.0, 0.25], [0.5, 1.0]])


def test_plots_never_switch_the_backend_or_leave_pyplot_figures(tmp_path: Path) -> None:
    # A fresh process, as a notebook would be: the user's backend is svg; a cnnkit figure must not change
    # it, and pyplot must not hold any figure afterwards.
    code = f"""
import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt
from cnnkit.plots import plot_learning_curves
plot_learning_curves([{{"epoch": 1, "train_loss": 1.0}}], {str(tmp_path / 'c.png')!r})
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
assert plt.get_fignums() == [], plt.get_fignums()
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_training_leaves_the_users_backend_alone(tmp_path: Path) -> None:
    code = f"""
import matplotlib
matplotlib.use("svg")
from cnnkit.config import load_config
from cnnkit.train import fit
fit(load_config(None, ["train.epochs=1", "data.limit_train=64"]), out={str(tmp_path / 'run')!r}, quiet=True)
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
    assert (tmp_path / "run" / "plots" / "learning_curves.png").read_bytes()[:8] == PNG
