"""RoIAlign against a naive per-sample bilinear loop written from torchvision's C++ kernel rules."""

from __future__ import annotations

import math

import pytest
import torch

from cnnkit.layers import RoIAlign
from cnnkit.layers.functional import roi_align


def _bilinear(f: torch.Tensor, y: float, x: float) -> torch.Tensor:
    c, h, w = f.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return torch.zeros(c, dtype=f.dtype)
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= h - 1:
        y_high = y_low = h - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= w - 1:
        x_high = x_low = w - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    return hy * hx * f[:, y_low, x_low] + hy * lx * f[:, y_low, x_high] + ly * hx * f[:, y_high, x_low] + ly * lx * f[:, y_high, x_high]


def _naive(f: torch.Tensor, rois: torch.Tensor, oh: int, ow: int, scale: float, g: int, aligned: bool) -> torch.Tensor:
    out = torch.zeros(len(rois), f.shape[1], oh, ow, dtype=f.dtype)
    off = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        x1, y1, x2, y2 = x1 * scale - off, y1 * scale - off, x2 * scale - off, y2 * scale - off
        rw, rh = x2 - x1, y2 - y1
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / oh, rw / ow
        for i in range(oh):
            for j in range(ow):
                acc = torch.zeros(f.shape[1], dtype=f.dtype)
                for iy in range(g):
                    for ix in range(g):
                        yy = y1 + i * bh + (iy + 0.5) * bh / g
                        xx = x1 + j * bw + (ix + 0.5) * bw / g
                        acc += _bilinear(f[int(b)], yy, xx)
                out[k, :, i, j] = acc / (g * g)
    return out


ROIS = torch.tensor([[0, 0, 0, 10, 12], [1, 2.4, 3.5, 9.6, 7.2], [0, -3, -2, 4, 20], [1, 5, 5, 5.3, 5.2],
                     [0, 30, 30, 40, 40], [1, 0, 0, 100, 3], [0, 1.5, 2.5, 6.5, 6.5], [1, 10.2, 12.1, 11.9, 13.4]])


@pytest.mark.parametrize(("out_size", "scale", "g", "aligned"),
                         [((2, 2), 1.0, 2, True), ((3, 4), 0.5, 1, True), ((7, 7), 1.0, 2, False), ((1, 5), 0.25, 3, False)])
def test_matches_naive_bilinear_loop(out_size: tuple[int, int], scale: float, g: int, aligned: bool) -> None:
    torch.manual_seed(0)
    f = torch.randn(2, 3, 13, 11, dtype=torch.float64)
    got = RoIAlign(out_size, scale, sampling_ratio=g, aligned=aligned)(f, ROIS.double())
    torch.testing.assert_close(got, _naive(f, ROIS.double(), *out_size, scale, g, aligned))


def test_hand_value_and_constant_map() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    # aligned: corners (1, 1)-(3, 3) become (0.5, 0.5)-(2.5, 2.5); one sample at the centre (1.5, 1.5): 4*1.5 + 1.5.
    assert roi_align(x, torch.tensor([[0.0, 1, 1, 3, 3]]), 1, sampling_ratio=1).item() == 7.5
    # Any RoI inside a constant map averages to that constant.
    c = torch.full((1, 2, 8, 8), 3.0)
    out = roi_align(c, torch.tensor([[0.0, 0.7, 1.2, 6.3, 7.9], [0, 2, 2, 2.5, 2.5]]), (3, 2))
    assert torch.allclose(out, torch.full_like(out, 3.0))


def test_gradcheck_against_features() -> None:
    torch.manual_seed(1)
    f = torch.randn(2, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 0.5, 0.3, 5.1, 4.2], [1, 1.0, 2.0, 6.5, 5.5]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: roi_align(t, rois, (2, 3), 1.0, 2), (f,))


def test_empty_rois_and_errors() -> None:
    assert roi_align(torch.randn(1, 3, 4, 4), torch.zeros(0, 5), 2).shape == (0, 3, 2, 2)
    with pytest.raises(ValueError, match=r"rois of shape \(K, 5\)"):
        roi_align(torch.randn(1, 1, 4, 4), torch.zeros(2, 4), 2)
    with pytest.raises(ValueError, match="Received: sampling_ratio=0"):
        RoIAlign(2, sampling_ratio=0)
    assert math.isclose(RoIAlign(2, 0.25).spatial_scale, 0.25)


def test_export_path_gives_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """While torch.export traces it, RoIAlign samples a per-RoI gather of the map (no loop over images):
    the same values as the per-image path, RoIs of both images interleaved."""
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 3, 9, 11, generator=g)
    xy = torch.rand(6, 2, generator=g) * 30
    rois = torch.cat([torch.tensor([[1.0], [0], [1], [0], [0], [1]]), xy, xy + 4 + torch.rand(6, 2, generator=g) * 20], dim=1)
    expected = roi_align(f, rois, (3, 2), 0.25, 2, True)
    monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
    torch.testing.assert_close(roi_align(f, rois, (3, 2), 0.25, 2, True), expected, rtol=0, atol=1e-6)
