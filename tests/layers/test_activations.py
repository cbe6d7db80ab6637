"""AbsTanh and ScaledTanh: hand-computed values and the defining properties."""

from __future__ import annotations

import math

import pytest
import torch

from cnnkit.layers import AbsTanh, ScaledTanh


def test_abs_tanh_values() -> None:
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], dtype=torch.float64)
    expected = torch.tensor([math.tanh(2), math.tanh(0.5), 0, math.tanh(0.5), math.tanh(2)], dtype=torch.float64)
    torch.testing.assert_close(AbsTanh()(x), expected)


def test_scaled_tanh_lecun_constants() -> None:
    f = ScaledTanh()
    assert f(torch.tensor(1.0, dtype=torch.float64)).item() == pytest.approx(1.7159 * math.tanh(2 / 3))
    assert f(torch.tensor(1.0)).item() == pytest.approx(1.0, abs=1e-4)   # f(1) = 1 (LeCun 1998)
    assert f(torch.tensor(-1.0)).item() == pytest.approx(-1.0, abs=1e-4)
    assert f(torch.tensor(50.0)).item() == pytest.approx(1.7159)          # asymptote A


def test_scaled_tanh_custom() -> None:
    x = torch.linspace(-3, 3, 7)
    torch.testing.assert_close(ScaledTanh(2.0, 0.5)(x), 2.0 * torch.tanh(0.5 * x))
