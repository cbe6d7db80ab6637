"""GlobalResponseNorm against the ConvNeXt V2 reference code (channels-last) and its identity init."""

from __future__ import annotations

import torch

from cnnkit.layers import GlobalResponseNorm


def _official_nhwc(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    # Algorithm 1 of Woo et al. 2023 (ConvNeXt V2), on NHWC input.
    gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
    nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
    return gamma * (x * nx) + beta + x


def test_matches_reference_code() -> None:
    torch.manual_seed(0)
    grn = GlobalResponseNorm(5).double()
    with torch.no_grad():
        grn.gamma.normal_()
        grn.beta.normal_()
    x = torch.randn(2, 5, 4, 3, dtype=torch.float64)
    expected = _official_nhwc(x.permute(0, 2, 3, 1), grn.gamma, grn.beta).permute(0, 3, 1, 2)
    torch.testing.assert_close(grn(x), expected)


def test_identity_at_init_and_parameter_names() -> None:
    grn = GlobalResponseNorm(3)
    assert {n for n, _ in grn.named_parameters()} == {"gamma", "beta"}
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(grn(x), x)


def test_hand_value() -> None:
    # Channel norms 3 and 1 -> mean 2 -> N = (1.5, 0.5); gamma = 1, beta = 0: out = x * (1 + N).
    x = torch.zeros(1, 2, 1, 2)
    x[0, 0, 0] = torch.tensor([3.0, 0.0])
    x[0, 1, 0] = torch.tensor([0.0, 1.0])
    grn = GlobalResponseNorm(2, eps=1e-12)
    with torch.no_grad():
        grn.gamma.fill_(1.0)
    out = grn(x)
    torch.testing.assert_close(out[0, :, 0], torch.tensor([[7.5, 0.0], [0.0, 1.5]]))


def test_dead_channel_has_finite_gradients() -> None:
    # An all-zero channel (a dead ReLU map) has norm 0, where d||x||/dx is 0/0.
    grn = GlobalResponseNorm(2)
    with torch.no_grad():
        grn.gamma.fill_(1.0)
    x = torch.randn(1, 2, 3, 3)
    x[0, 1] = 0.0
    x.requires_grad_()
    grn(x).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(grn.gamma.grad).all()
