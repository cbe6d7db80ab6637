"""Weight penalties: hand-computed values over chosen parameters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit.layers import elastic_net_penalty, l1_penalty, l2_penalty, penalties


def test_hand_values() -> None:
    a, b = torch.tensor([1.0, -2.0]), torch.tensor([[3.0], [-4.0]])
    assert l1_penalty([a, b]).item() == 10.0
    assert l2_penalty([a, b]).item() == 30.0
    assert elastic_net_penalty([a, b], l1=0.5, l2=0.1).item() == pytest.approx(5.0 + 3.0)


def test_generators_gradients_and_empty() -> None:
    lin = nn.Linear(3, 2)
    pen = elastic_net_penalty((p for n, p in lin.named_parameters() if n == "weight"), l1=1.0, l2=1.0)
    pen.backward()
    torch.testing.assert_close(lin.weight.grad, torch.sign(lin.weight) + 2 * lin.weight)
    assert lin.bias.grad is None
    assert l1_penalty([]).item() == 0.0
    assert penalties.l2_penalty is l2_penalty


def test_negative_coefficients_raise() -> None:
    with pytest.raises(ValueError, match="0.0 <= l1. Received: l1=-0.1"):
        elastic_net_penalty([torch.ones(2)], l1=-0.1, l2=0.0)
