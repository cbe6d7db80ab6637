"""explain / explain_model: files, titles' numbers, default layers, run folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cnnkit.errors import CnnkitError
from cnnkit.explain import METHODS, explain, explain_model
from cnnkit.explain.run import default_gradcam_layer

from .explain_helpers import square_task


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("method", METHODS)
def test_explain_model_every_method(square_model: nn.Module, method: str, tmp_path: Path) -> None:
    x, y, _ = square_task(3, seed=4)
    res = explain_model(square_model, x, method=method, class_names=["left", "right"], names=["a", "b", "c"],
                        out=tmp_path, nt_samples=2, n_steps=4, window=4, stride=4)
    with torch.no_grad():
        p = torch.softmax(square_model(x), 1)
    assert (res.predicted == p.argmax(1)).all()
    torch.testing.assert_close(res.probability, p.max(1).values)
    if method == "filters":
        assert [q.name for q in res.paths] == ["filters.png"] and res.layer == "features.0"
    else:
        assert len(res.paths) == 3 and all(q.is_file() and q.stat().st_size > 0 for q in res.paths)
        assert res.paths[0].name.startswith("000-a-")
    if method in ("saliency", "smoothgrad", "gradcam", "occlusion", "integrated-gradients"):
        assert res.maps is not None and res.maps.shape == (3, 16, 16)
    if method == "gradcam":
        assert res.layer == "features.3"  # the last Conv2d
    if method == "feature-maps":
        assert res.layer == "features.0" and res.maps is not None and res.maps.shape == (3, 8, 16, 16)
    assert _no_hooks(square_model)


def test_default_gradcam_layer_uses_the_registry() -> None:
    from cnnkit.models import create_model, model_info

    lenet = create_model("lenet5")
    assert default_gradcam_layer(lenet, {"build": {"name": "lenet5"}}) == model_info("lenet5")["gradcam_layer"]
    # no registry name (a spec model): the last Conv2d
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3), nn.Flatten())
    assert default_gradcam_layer(net, {"build": {"spec": {}}}) == "1"


def test_explain_run_folder(digits_run: Path, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    # raw 8x8 digits (0..16 scaled to 0..255) as a batch .npy; model.json's preprocessing resizes them
    d = load_digits()
    np.save(tmp_path / "two.npy", (d.images[:2, None] * 255 / 16).round().astype(np.uint8))
    paths = explain(digits_run, [tmp_path / "two.npy"], method="gradcam", out=tmp_path / "out")
    assert [p.name for p in paths] == ["000-two.npy_0-gradcam.png", "001-two.npy_1-gradcam.png"]
    assert all(p.is_file() for p in paths)
    assert explain(digits_run, [], method="filters", out=tmp_path / "f")[0].name == "filters.png"
    with pytest.raises(CnnkitError, match="did you mean 'gradcam'"):
        explain(digits_run, [tmp_path / "two.npy"], method="gradcm", out=tmp_path)
    with pytest.raises(CnnkitError, match="no layer 'features.9'"):
        explain(digits_run, [tmp_path / "two.npy"], method="feature-maps", layer="features.9", out=tmp_path)
    with pytest.raises(CnnkitError, match="Expected 0 <= target < 10"):
        explain(digits_run, [tmp_path / "two.npy"], method="saliency", target=10, out=tmp_path)
