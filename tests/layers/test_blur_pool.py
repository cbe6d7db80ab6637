"""BlurPool2d / MaxBlurPool2d: the binomial filters, a naive convolution loop, limiting cases."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnkit.layers import BlurPool2d, MaxBlurPool2d
from cnnkit.layers.functional import binomial_filter2d


def test_binomial_filters() -> None:
    torch.testing.assert_close(binomial_filter2d(3), torch.tensor([1.0, 2, 1])[:, None] * torch.tensor([1.0, 2, 1]) / 16)
    torch.testing.assert_close(binomial_filter2d(5)[2], torch.tensor([1.0, 4, 6, 4, 1]) * 6 / 256)
    assert binomial_filter2d(1).item() == 1.0


def test_naive_loop_reflect_padding() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 2, 7, 6, dtype=torch.float64)
    out = BlurPool2d(2, 3, 2).double()(x)
    xp = F.pad(x, (1, 1, 1, 1), mode="reflect")
    w = torch.tensor([1.0, 2, 1], dtype=torch.float64)
    for c in range(2):
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                acc = sum(w[a] * w[b] * xp[0, c, 2 * i + a, 2 * j + b] for a in range(3) for b in range(3)) / 16
                torch.testing.assert_close(out[0, c, i, j], acc)


def test_limits_constant_input_and_plain_subsampling() -> None:
    assert torch.allclose(BlurPool2d(3, 5)(torch.full((1, 3, 8, 8), 2.5)), torch.tensor(2.5))
    x = torch.randn(2, 3, 8, 9)
    torch.testing.assert_close(BlurPool2d(3, kernel_size=1)(x), x[..., ::2, ::2])


def test_max_blur_pool_is_blur_of_dense_max() -> None:
    x = torch.randn(2, 3, 10, 10)
    expected = BlurPool2d(3, 3, 2)(F.max_pool2d(x, 2, stride=1))
    torch.testing.assert_close(MaxBlurPool2d(3)(x), expected)


def test_blur_reduces_aliasing_of_a_nyquist_pattern() -> None:
    # A checkerboard (highest frequency) aliases to a constant under plain subsampling but is
    # removed by the [1, 2, 1] low-pass: the zero of its frequency response at Nyquist.
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2
    x = checker.float().view(1, 1, 8, 8)
    assert x[..., ::2, ::2].std() == 0 and x[..., ::2, ::2].mean() == 0
    out = BlurPool2d(1, 3, 2, pad_mode="circular")(x)
    torch.testing.assert_close(out, torch.full_like(out, 0.5))
