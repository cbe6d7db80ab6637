"""Oracles for LpPool2d, MixedPool2d and SoftmaxPool2d: naive loops, torch builtins in limiting cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.layers import LpPool2d, MixedPool2d, SoftmaxPool2d
from cnnkit.layers.functional import lp_pool2d, softmax_pool2d

from . import _naive

FAST = settings(max_examples=25, deadline=None)


@pytest.mark.parametrize(("p", "k", "s", "pad"), [(1.0, 2, 2, 0), (2.0, 3, 2, 1), (3.5, 3, 1, 1), (8.0, 2, 1, 0),
                                                   (math.inf, 3, 2, 1)])
def test_lp_pool_matches_naive_loop(p: float, k: int, s: int, pad: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 2, 6, 7, dtype=torch.float64)
    fn = (lambda v: max(abs(a) for a in v)) if math.isinf(p) else _naive.lp(p)
    torch.testing.assert_close(LpPool2d(p, k, s, pad)(x), _naive.window_reduce(x, k, s, pad, fn))


def test_lp_pool_hand_value() -> None:
    # (1/4 (1 + 4 + 9 + 16))^(1/2) = sqrt(7.5); the sign does not matter (|a|).
    x = torch.tensor([[[[1.0, -2.0], [3.0, -4.0]]]])
    assert LpPool2d(2, 2)(x).item() == pytest.approx(math.sqrt(7.5))


def test_lp_pool_large_p_does_not_overflow_and_zero_windows_have_zero_gradient() -> None:
    x = torch.tensor([[[[1e6, 2e6, 0.0, 0.0], [3e6, 4e6, 0.0, 0.0]]]], requires_grad=True)
    out = LpPool2d(16, 2)(x)
    expected = ((1 + 2 ** 16 + 3 ** 16 + 4 ** 16) / 4) ** (1 / 16) * 1e6
    assert out[0, 0, 0, 0].item() == pytest.approx(expected, rel=1e-5)
    assert out[0, 0, 0, 1].item() == 0.0
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad[..., 2:] == 0).all()


@FAST
@given(st.integers(1, 3), st.integers(2, 7), st.integers(2, 7), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_lp_pool_p1_is_average_pooling_on_nonnegative_input(b: int, h: int, w: int, k: int, seed: int) -> None:
    k = min(k, h, w)
    x = torch.rand(b, 2, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    torch.testing.assert_close(LpPool2d(1, k)(x), F.avg_pool2d(x, k))


@FAST
@given(st.integers(2, 3), st.integers(0, 2**31 - 1))
def test_lp_pool_approaches_max_as_p_grows(k: int, seed: int) -> None:
    # Power-mean inequalities: max * N^(-1/p) <= Lp <= max, and Lp is non-decreasing in p; so Lp -> max.
    x = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    mx = F.max_pool2d(x, k)
    prev = torch.zeros_like(mx)
    for p in (1, 2, 4, 16, 64, 256):
        out = LpPool2d(p, k)(x)
        assert (out <= mx * (1 + 1e-12)).all()
        assert (out >= mx * (k * k) ** (-1 / p) * (1 - 1e-12)).all()
        assert (out >= prev * (1 - 1e-12)).all()
        prev = out
    torch.testing.assert_close(prev, mx, rtol=0.01, atol=0.0)


@pytest.mark.parametrize(("alpha", "k", "s", "pad"), [(0.0, 2, 2, 0), (1.0, 3, 2, 1), (0.3, 3, 1, 1)])
def test_mixed_pool_matches_naive_loop(alpha: float, k: int, s: int, pad: int) -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 2, 6, 5, dtype=torch.float64)
    expected = _naive.window_reduce(x, k, s, pad, lambda v: alpha * max(v) + (1 - alpha) * _naive.mean(v))
    torch.testing.assert_close(MixedPool2d(k, s, pad, alpha=alpha)(x), expected)


def test_mixed_pool_limits_are_torch_max_and_avg() -> None:
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(MixedPool2d(2, alpha=1.0)(x), F.max_pool2d(x, 2))
    torch.testing.assert_close(MixedPool2d(2, alpha=0.0)(x), F.avg_pool2d(x, 2))


def test_mixed_pool_learnable_alpha_gradient() -> None:
    # d out / d logit = sigmoid'(logit) * (max - avg), summed: checked against the hand formula.
    x = torch.randn(1, 2, 4, 4)
    pool = MixedPool2d(2, alpha=0.25, learnable=True)
    assert float(pool.alpha.detach()) == pytest.approx(0.25)
    pool(x).sum().backward()
    expected = 0.25 * 0.75 * (F.max_pool2d(x, 2) - F.avg_pool2d(x, 2)).sum()
    assert pool.alpha_logit.grad.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize(("beta", "k", "s", "pad"), [(1.0, 2, 2, 0), (-2.0, 3, 2, 1), (0.5, 3, 1, 1), (7.0, 2, 1, 0)])
def test_softmax_pool_matches_naive_loop(beta: float, k: int, s: int, pad: int) -> None:
    torch.manual_seed(2)
    x = torch.randn(2, 2, 6, 7, dtype=torch.float64)
    expected = _naive.window_reduce(x, k, s, pad, _naive.softmax_weighted(beta))
    torch.testing.assert_close(SoftmaxPool2d(k, s, pad, beta=beta)(x), expected)


def test_softmax_pool_limits() -> None:
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(SoftmaxPool2d(2, beta=0.0)(x), F.avg_pool2d(x, 2))
    torch.testing.assert_close(SoftmaxPool2d(3, 1, 1, beta=0.0)(x), F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
    torch.testing.assert_close(SoftmaxPool2d(2, beta=1e4)(x), F.max_pool2d(x, 2))
    torch.testing.assert_close(SoftmaxPool2d(2, beta=-1e4)(x), -F.max_pool2d(-x, 2))
    assert torch.equal(SoftmaxPool2d(3, 2, 1, beta=math.inf)(x), F.max_pool2d(x, 3, 2, 1))


def test_softmax_pool_is_stable_for_huge_beta_and_inputs() -> None:
    x = torch.tensor([[[[1e30, -1e30], [3.0, 1e30]]]], requires_grad=True)
    for beta in (1.0, 1e6, -1e6):
        out = softmax_pool2d(x, 2, beta=beta)
        assert torch.isfinite(out).all()
        out.sum().backward()
        assert torch.isfinite(x.grad).all()
    assert softmax_pool2d(x, 2, beta=1.0).item() == pytest.approx(1e30)


def test_softmax_pool_padding_gets_no_weight() -> None:
    # With padding, a window at the corner holds only real values: a zero pad would pull the result
    # towards 0 for large negative inputs.
    x = -5.0 - torch.rand(1, 1, 4, 4)
    out = softmax_pool2d(x, 3, 1, 1, beta=-3.0)
    assert (out < -5.0).all()


def test_lp_functional_equals_module() -> None:
    x = torch.randn(2, 3, 7, 7)
    torch.testing.assert_close(lp_pool2d(x, 3.0, 3, 2, 1), LpPool2d(3.0, 3, 2, 1)(x))
