"""Test-time augmentation: views, weights, and one answer for training and evaluation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import CnnkitError
from cnnkit.evaluate.tta import shift_image, tta_log_probs, tta_logits, tta_views


def test_shift_image_modes_by_hand() -> None:
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    # one column right: reflect mirrors column 1, replicate repeats column 0, zeros fills 0, circular wraps
    assert shift_image(x, 0, 1)[0, 0].tolist() == [[1, 0, 1], [4, 3, 4], [7, 6, 7]]
    assert shift_image(x, 0, 1, mode="replicate")[0, 0].tolist() == [[0, 0, 1], [3, 3, 4], [6, 6, 7]]
    assert shift_image(x, 0, 1, mode="zeros")[0, 0].tolist() == [[0, 0, 1], [0, 3, 4], [0, 6, 7]]
    assert shift_image(x, 0, 1, mode="circular")[0, 0].tolist() == [[2, 0, 1], [5, 3, 4], [8, 6, 7]]
    # one row up
    assert shift_image(x, -1, 0, mode="replicate")[0, 0].tolist() == [[3, 4, 5], [6, 7, 8], [6, 7, 8]]
    with pytest.raises(ValueError, match="Expected mode"):
        shift_image(x, 1, 1, mode="wrap")


def _airbench_reference(model: nn.Module, x: torch.Tensor, mode: str) -> torch.Tensor:
    """airbench's ``infer`` written out directly: logits of the image and its mirror, then the two
    diagonal one-pixel translations of both (reflect padding), weighted half as much."""
    logits = model(x)
    if mode == "none":
        return logits
    flipped = x.flip(-1)
    out = 0.5 * (logits + model(flipped))
    if mode == "flip":
        return out
    pad = F.pad(torch.cat([x, flipped]), (1, 1, 1, 1), mode="reflect")
    h, w = x.shape[-2:]
    b = x.shape[0]
    up_left = model(pad[..., :h, :w])
    down_right = model(pad[..., 2 : 2 + h, 2 : 2 + w])
    shifted = (up_left[:b] + up_left[b:] + down_right[:b] + down_right[b:]) / 4
    return 0.5 * out + 0.5 * shifted


@pytest.mark.parametrize("mode", ["none", "flip", "shift"])
def test_tta_matches_the_airbench_formulation(mode: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 3)).double()
    x = torch.randn(5, 1, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(tta_logits(model, x, mode), _airbench_reference(model, x, mode))
        torch.testing.assert_close(tta_log_probs(model, x, mode), torch.log_softmax(_airbench_reference(model, x, mode), 1))


def test_views_weights_and_errors() -> None:
    x = torch.randn(2, 1, 4, 4)
    for mode, n in (("none", 1), ("flip", 2), ("shift", 6)):
        views = tta_views(x, mode)
        assert len(views) == n and sum(w for _, w in views) == pytest.approx(1.0)
        assert views[0][0] is x
    assert len(tta_views(torch.randn(2, 3, 10), "shift")) == 1  # series: no image views
    # a model blind to left-right mirroring gives the same answer with and without flip averaging
    sym = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 3))
    torch.testing.assert_close(tta_log_probs(sym, x, "flip"), tta_log_probs(sym, x, "none"))
    with pytest.raises(CnnkitError, match="did you mean 'flip'"):
        tta_views(x, "flp")
