"""Test-time augmentation views and averaging."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit.errors import CnnkitError
from cnnkit.evaluate.tta import shift_image, tta_log_probs, tta_views


def test_shift_image_modes_by_hand() -> None:
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    # one column right: replicate repeats the first column, zeros fills 0, circular wraps
    assert shift_image(x, 0, 1)[0, 0].tolist() == [[0, 0, 1], [3, 3, 4], [6, 6, 7]]
    assert shift_image(x, 0, 1, mode="zeros")[0, 0].tolist() == [[0, 0, 1], [0, 3, 4], [0, 6, 7]]
    assert shift_image(x, 0, 1, mode="circular")[0, 0].tolist() == [[2, 0, 1], [5, 3, 4], [8, 6, 7]]
    # one row up
    assert shift_image(x, -1, 0)[0, 0].tolist() == [[3, 4, 5], [6, 7, 8], [6, 7, 8]]
    with pytest.raises(ValueError, match="Expected mode"):
        shift_image(x, 1, 1, mode="reflect")


def test_views_and_average() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.randn(5, 1, 4, 4)
    assert len(tta_views(x, "none")) == 1 and len(tta_views(x, "flip")) == 2 and len(tta_views(x, "shift")) == 5
    with torch.no_grad():
        ref = torch.log_softmax(model(x).double(), 1)
        expected = (torch.softmax(model(x).double(), 1) + torch.softmax(model(torch.flip(x, dims=(-1,))).double(), 1)) / 2
        shifted = torch.stack([torch.softmax(model(v).double(), 1) for v in tta_views(x, "shift")]).mean(0)
    torch.testing.assert_close(tta_log_probs(model, x, "none"), ref)
    torch.testing.assert_close(tta_log_probs(model, x, "flip").exp(), expected)
    torch.testing.assert_close(tta_log_probs(model, x, "shift").exp(), shifted)
    # a model blind to left-right mirroring gives the same answer with and without flip averaging
    sym = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 3))
    torch.testing.assert_close(tta_log_probs(sym, x, "flip"), tta_log_probs(sym, x, "none"))
    with pytest.raises(CnnkitError, match="did you mean 'flip'"):
        tta_views(x, "flp")
