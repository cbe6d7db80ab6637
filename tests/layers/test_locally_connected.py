"""LocallyConnected1d/2d: naive loop over positions, shared-weight limit = Conv2d, full gradcheck."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnkit.layers import LocallyConnected1d, LocallyConnected2d
from cnnkit.layers.functional import locally_connected2d


def _naive(x: torch.Tensor, lc: LocallyConnected2d) -> torch.Tensor:
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = lc.kernel_size, lc.stride, lc.padding, lc.output_size
    xp = F.pad(x, (pw, pw, ph, ph))
    out = torch.zeros(x.shape[0], lc.out_channels, oh, ow, dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]          # (B, I, kh, kw)
            w = lc.weight[i * ow + j]                                         # (kh, kw, I, O)
            out[:, :, i, j] = torch.einsum("bihw,hwio->bo", patch, w)
    return out + lc.bias


def test_matches_naive_loop() -> None:
    torch.manual_seed(0)
    lc = LocallyConnected2d(3, 4, (7, 9), (3, 2), stride=(2, 1), padding=(1, 0)).double()
    x = torch.randn(2, 3, 7, 9, dtype=torch.float64)
    torch.testing.assert_close(lc(x), _naive(x, lc))


def test_shared_weights_reduce_to_conv2d() -> None:
    torch.manual_seed(1)
    lc = LocallyConnected2d(2, 3, 8, 3, stride=1, padding=1, bias=False).double()
    conv_w = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        lc.weight.copy_(conv_w.permute(2, 3, 1, 0).expand_as(lc.weight))
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(lc(x), F.conv2d(x, conv_w, padding=1))


def test_full_gradcheck_of_the_hand_written_backward() -> None:
    torch.manual_seed(2)
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2 * 2, 3, 2, 2, 3, dtype=torch.float64, requires_grad=True)  # oh=2, ow=2
    bias = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    fn = lambda a, w, b: locally_connected2d(a, w, b, (2, 2), (2, 2), (1, 0))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, weight, bias))


def test_one_dimensional_form() -> None:
    torch.manual_seed(3)
    lc = LocallyConnected1d(2, 3, 11, 4, stride=3, padding=1).double()
    x = torch.randn(2, 2, 11, dtype=torch.float64)
    out = lc(x)
    assert out.shape == (2, 3, 4)
    xp = F.pad(x, (1, 1))
    for t in range(4):
        expected = torch.einsum("bik,kio->bo", xp[:, :, 3 * t:3 * t + 4], lc.weight[t, 0]) + lc.bias[:, 0, t]
        torch.testing.assert_close(out[:, :, t], expected)


def test_parameter_count_is_positions_times_conv() -> None:
    lc = LocallyConnected2d(3, 8, 12, 3)
    assert lc.weight.numel() == 10 * 10 * 3 * 8 * 9 and lc.bias.numel() == 8 * 10 * 10
