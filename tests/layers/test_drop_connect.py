"""DropConnect: seeded drop-rate test, expected weights at evaluation, limiting cases."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnkit.layers import DropConnectConv2d, DropConnectLinear
from cnnkit.layers.functional import drop_connect


def test_drop_rate_matches_p() -> None:
    torch.manual_seed(0)
    w = torch.ones(200, 250)  # 50,000 weights
    for p in (0.1, 0.5, 0.8):
        dropped = (drop_connect(w, p) == 0).double().mean().item()
        sd = (p * (1 - p) / w.numel()) ** 0.5
        assert abs(dropped - p) < 5 * sd, (p, dropped)


def test_training_uses_a_masked_weight_matrix() -> None:
    # With one input unit set, the output reads one weight column: each entry is W_ij or 0.
    torch.manual_seed(1)
    layer = DropConnectLinear(5, 400, p=0.5, bias=False).train()
    x = torch.zeros(1, 5)
    x[0, 2] = 1.0
    out = layer(x)[0]
    col = layer.weight[:, 2]
    assert torch.all((out == 0) | (out == col))
    assert 0.35 < (out == 0).double().mean() < 0.65


def test_eval_uses_expected_weights_and_matches_training_mean() -> None:
    torch.manual_seed(2)
    layer = DropConnectLinear(6, 3, p=0.3)
    x = torch.randn(4, 6)
    torch.testing.assert_close(layer.eval()(x), F.linear(x, 0.7 * layer.weight, layer.bias))
    layer.train()
    with torch.no_grad():
        mean = torch.stack([layer(x) for _ in range(4000)]).mean(0)
    torch.testing.assert_close(mean, layer.eval()(x), atol=0.03, rtol=0.0)


def test_p_zero_is_the_plain_layer() -> None:
    lin = DropConnectLinear(4, 2, p=0.0).train()
    x = torch.randn(3, 4)
    torch.testing.assert_close(lin(x), F.linear(x, lin.weight, lin.bias))
    conv = DropConnectConv2d(2, 3, 3, p=0.0, padding=1).train()
    xi = torch.randn(1, 2, 5, 5)
    torch.testing.assert_close(conv(xi), F.conv2d(xi, conv.weight, conv.bias, padding=1))


def test_conv_eval_uses_expected_filters() -> None:
    conv = DropConnectConv2d(2, 3, 3, p=0.25, stride=2, groups=1).eval()
    x = torch.randn(2, 2, 7, 7)
    torch.testing.assert_close(conv(x), F.conv2d(x, 0.75 * conv.weight, conv.bias, stride=2))
