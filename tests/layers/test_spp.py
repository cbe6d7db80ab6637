"""SpatialPyramidPool2d: fixed output length, the paper's bins when n divides the size, layout."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.layers import SpatialPyramidPool2d


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.sampled_from(["max", "avg"]))
def test_output_length_does_not_depend_on_input_size(h: int, w: int, mode: str) -> None:
    spp = SpatialPyramidPool2d((1, 2, 4), mode)
    out = spp(torch.randn(2, 3, h, w))
    assert out.shape == (2, 3 * 21) == (2, 3 * spp.bins)
    assert torch.isfinite(out).all()


def test_paper_bins_when_n_divides_the_size() -> None:
    # He et al.: window ceil(a/n), stride floor(a/n); for a = 12 these are exact tilings.
    x = torch.randn(2, 3, 12, 12)
    out = SpatialPyramidPool2d((1, 2, 3, 6))(x)
    parts = [F.max_pool2d(x, 12 // n, 12 // n).flatten(1) for n in (1, 2, 3, 6)]
    torch.testing.assert_close(out, torch.cat(parts, 1))


def test_layout_and_naive_bins_for_uneven_sizes() -> None:
    x = torch.randn(1, 2, 5, 7)
    out = SpatialPyramidPool2d((2,), "avg")(x).view(2, 2, 2)
    for c in range(2):
        for i in range(2):
            for j in range(2):
                rows = slice((i * 5) // 2, -(-(i + 1) * 5 // 2))
                cols = slice((j * 7) // 2, -(-(j + 1) * 7 // 2))
                torch.testing.assert_close(out[c, i, j], x[0, c, rows, cols].mean())
