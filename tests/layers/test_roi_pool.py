"""RoIPool against a naive loop over RoIs and bins (Fast R-CNN's Caffe kernel rules)."""

from __future__ import annotations

import math

import pytest
import torch

from cnnkit.layers import RoIPool
from cnnkit.layers.functional import roi_pool


def _c_round(v: float) -> int:
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def _naive(f: torch.Tensor, rois: torch.Tensor, oh: int, ow: int, scale: float) -> torch.Tensor:
    b_, c, h, w = f.shape
    out = torch.zeros(len(rois), c, oh, ow, dtype=f.dtype)
    for k, roi in enumerate(rois.tolist()):
        x1, y1, x2, y2 = (_c_round(v * scale) for v in roi[1:])
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        for i in range(oh):
            hs = min(max(math.floor(i * rh / oh) + y1, 0), h)
            he = min(max(math.ceil((i + 1) * rh / oh) + y1, 0), h)
            for j in range(ow):
                ws = min(max(math.floor(j * rw / ow) + x1, 0), w)
                we = min(max(math.ceil((j + 1) * rw / ow) + x1, 0), w)
                if he > hs and we > ws:
                    out[k, :, i, j] = f[int(roi[0]), :, hs:he, ws:we].amax(dim=(-1, -2))
    return out


ROIS = torch.tensor([[0, 0, 0, 10, 12], [1, 2.4, 3.5, 9.6, 7.2], [0, -3, -2, 4, 20], [1, 5, 5, 5, 5],
                     [0, 30, 30, 40, 40], [1, 0, 0, 100, 3], [0, 1.5, 2.5, 6.5, 6.5]])


@pytest.mark.parametrize(("out_size", "scale"), [((2, 2), 1.0), ((3, 4), 0.5), ((7, 7), 1.0), ((1, 5), 0.25)])
def test_matches_naive_loop(out_size: tuple[int, int], scale: float) -> None:
    torch.manual_seed(0)
    f = torch.randn(2, 3, 13, 11)
    torch.testing.assert_close(RoIPool(out_size, scale)(f, ROIS), _naive(f, ROIS, *out_size, scale))


def test_hand_example_and_empty_bins() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert roi_pool(x, torch.tensor([[0.0, 0, 0, 3, 3]]), 2).flatten().tolist() == [5, 7, 13, 15]
    # An RoI entirely outside the map: every bin is empty and reads 0.
    assert roi_pool(x, torch.tensor([[0.0, 10, 10, 12, 12]]), 2).abs().sum() == 0


def test_gradcheck_float64() -> None:
    torch.manual_seed(1)
    f = torch.randn(2, 2, 7, 6, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 0, 0, 5, 6], [1, 1, 2, 4, 4], [1, 0, 0, 2, 1]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: roi_pool(t, rois, (2, 3)), (f,))


def test_gradient_goes_to_the_maxima() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4).requires_grad_()
    roi_pool(x, torch.tensor([[0.0, 0, 0, 3, 3]]), 2).sum().backward()
    expected = torch.zeros(16)
    expected[[5, 7, 13, 15]] = 1
    assert torch.equal(x.grad.flatten(), expected)


def test_export_path_gives_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """While torch.export traces it, RoIPool builds every sparse-table level (no host sync): same maxima."""
    g = torch.Generator().manual_seed(1)
    f = torch.randn(2, 3, 12, 10, generator=g)
    xy = torch.rand(5, 2, generator=g) * 30
    rois = torch.cat([torch.tensor([[0.0], [1], [1], [0], [1]]), xy, xy + torch.rand(5, 2, generator=g) * 25], dim=1)
    expected = roi_pool(f, rois, (2, 3), 0.25)
    monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
    torch.testing.assert_close(roi_pool(f, rois, (2, 3), 0.25), expected, rtol=0, atol=0)
    torch.testing.assert_close(roi_pool(f, rois, (2, 3), 0.25), _naive(f, rois, 2, 3, 0.25))
