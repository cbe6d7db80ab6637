"""MaxNorm / apply_max_norm: projection onto the L2 ball per neuron, vectors inside untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit.layers import LocallyConnected2d, MaxNorm, apply_max_norm


def test_linear_rows_are_projected() -> None:
    lin = nn.Linear(3, 3, bias=True)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 4.0, 0.0], [0.3, 0.4, 0.0], [0.0, 0.0, 10.0]]))
        lin.bias.fill_(100.0)
    assert apply_max_norm(lin, 2.0) == 2
    expected = torch.tensor([[1.2, 1.6, 0.0], [0.3, 0.4, 0.0], [0.0, 0.0, 2.0]])
    torch.testing.assert_close(lin.weight, expected)
    assert torch.equal(lin.weight[1], torch.tensor([0.3, 0.4, 0.0]))  # inside: bit-for-bit untouched
    assert torch.equal(lin.bias, torch.full((3,), 100.0))             # biases are not constrained


def test_conv_filters_transposed_channels_and_locally_connected() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 6, 3, groups=2),
                          LocallyConnected2d(2, 3, 5, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(50)
    MaxNorm(1.5)(model)
    conv, convt, lc = model
    assert torch.allclose(conv.weight.flatten(1).norm(dim=1), torch.tensor(1.5))
    # ConvTranspose2d weight (C_in, C_out/groups, k, k): output channel o of group g reads
    # weight[g*2:(g+1)*2, o]; check the per-output-channel norms by a loop.
    for g in range(2):
        for o in range(3):
            assert convt.weight[g * 2:(g + 1) * 2, o].norm().item() == pytest.approx(1.5, rel=1e-5)
    # LocallyConnected: (positions, kh, kw, in, out): one neuron per (position, out channel).
    norms = lc.weight.permute(0, 4, 1, 2, 3).flatten(2).norm(dim=2)
    assert torch.allclose(norms, torch.tensor(1.5))


def test_errors_and_repr() -> None:
    with pytest.raises(ValueError, match="0.0 < max_norm. Received: max_norm=0"):
        MaxNorm(0)
    with pytest.raises(ValueError, match="Received: max_norm=-1"):
        apply_max_norm(nn.Linear(2, 2), -1)
    assert repr(MaxNorm(3.5)) == "MaxNorm(max_norm=3.5)"
