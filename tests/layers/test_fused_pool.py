"""The fused pooling kernels against the plain autograd formulations they replace (kept as oracles).

Forward and gradient agree with the reference on random inputs; float64 gradcheck checks each
hand-written backward against finite differences; the sampler's frequencies pass a seeded chi-square
test; the separable max sends the gradient where ``max_pool2d`` does, ties included.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cnnkit.layers._fused_pool import (
    LpPoolFn,
    SeparableMaxFn,
    SoftmaxPoolFn,
    SoftmaxUnderflow,
    StochasticEvalFn,
    stochastic_sample_index,
)
from cnnkit.layers.functional import softmax_pool2d, stochastic_pool2d
from cnnkit.layers.pooling import _lp_pool2d_plain, _softmax_pool2d_windows
from cnnkit.layers.stochastic_pool import _probability_weighting

from . import _naive

WINDOWS = [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((3, 3), (1, 1), (1, 1)), ((2, 3), (1, 2), (1, 1)),
           ((3, 2), (3, 1), (0, 1))]


def _agree(fast, ref, x: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
    x = x.detach().requires_grad_()
    out, expected = fast(x), ref(x)
    torch.testing.assert_close(out, expected)
    g = torch.randn_like(expected)
    (got,) = torch.autograd.grad(out, x, g)
    (want,) = torch.autograd.grad(expected, x, g)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize(("k", "s", "p"), WINDOWS)
@pytest.mark.parametrize("beta", [1.0, -2.5])
def test_softmax_fused_equals_window_copy(k, s, p, beta: float) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    _agree(lambda t: SoftmaxPoolFn.apply(t, k, s, p, beta), lambda t: _softmax_pool2d_windows(t, k, s, p, beta), x)


def test_softmax_float32_matches_naive_loop() -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 2, 7, 6) * 3
    expected = _naive.window_reduce(x, 3, 2, 1, _naive.softmax_weighted(1.5)).float()
    torch.testing.assert_close(softmax_pool2d(x, 3, 2, 1, beta=1.5), expected, rtol=1e-5, atol=1e-5)


def test_softmax_falls_back_per_window_when_a_window_underflows() -> None:
    # One window 200 below the map maximum: e^(-200) underflows float32 under the map-wide shift,
    # so the fused path refuses and the per-window path gives the exact answer.
    x = torch.tensor([[[[0.0, 0.5, -200.0, -199.0]]]])
    with pytest.raises(SoftmaxUnderflow):
        SoftmaxPoolFn.apply(x, (1, 2), (1, 2), (0, 0), 1.0)
    out = softmax_pool2d(x, (1, 2), beta=1.0)
    assert out.shape == (1, 1, 1, 2)
    w = 1 / (1 + math.exp(-1.0))  # weight of the larger of two values 1 apart, beta = 1
    assert out[0, 0, 0, 1].item() == pytest.approx(-199.0 * w + -200.0 * (1 - w), rel=1e-6)
    assert out[0, 0, 0, 0].item() == pytest.approx(0.5 * (1 / (1 + math.exp(-0.5))), rel=1e-6)


@pytest.mark.parametrize(("k", "s", "p"), WINDOWS)
@pytest.mark.parametrize("order", [2.0, 3.0, 4.0, 3.5])
def test_lp_fused_equals_autograd(k, s, p, order: float) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(2)
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    x[0, 0, :4, :4] = 0.0  # all-zero windows: the gradient there is 0, not NaN
    _agree(lambda t: LpPoolFn.apply(t, order, k, s, p), lambda t: _lp_pool2d_plain(t, order, k, s, p), x)


@pytest.mark.parametrize(("k", "s"), [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((2, 3), (1, 1)), ((3, 3), (3, 3))])
def test_stochastic_eval_fused_equals_autograd(k, s) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(3)
    x = torch.rand(2, 3, 9, 8, dtype=torch.float64)
    x[0, 0, :3, :3] = 0.0  # zero regions give 0 with gradient 0
    _agree(lambda t: StochasticEvalFn.apply(t, k, s), lambda t: _probability_weighting(t, k, s), x)


def _gradcheck_cases() -> list:  # type: ignore[type-arg]
    cases = []
    for i, (k, s, p) in enumerate(WINDOWS):
        mark = () if i == 1 else (pytest.mark.slow,)  # one window in the default tier, all in the slow one
        cases.append(pytest.param(k, s, p, marks=mark, id=f"{k}-{s}-{p}"))
    return cases


@pytest.mark.parametrize(("k", "s", "p"), _gradcheck_cases())
def test_hand_written_backwards_pass_gradcheck(k, s, p) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(4)
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    for beta in (1.0, -2.5):
        assert torch.autograd.gradcheck(lambda t, b=beta: SoftmaxPoolFn.apply(t, k, s, p, b), (x,))
    for order in (2.0, 3.0, 3.5):
        assert torch.autograd.gradcheck(lambda t, q=order: LpPoolFn.apply(t, q, k, s, p), (x,))
    positive = (torch.rand(1, 2, 6, 7, dtype=torch.float64) + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: StochasticEvalFn.apply(t, k, s), (positive,))
    assert torch.autograd.gradcheck(lambda t: SeparableMaxFn.apply(t, k, s), (x,))


# 99.9% quantile of chi-square with 6 degrees of freedom (7 positive entries): a correct sampler fails
# 1 run in 1000; the seed is fixed, so the test is deterministic, and a wrong pick-to-position map fails.
CHI2_6DOF_999 = 22.458


def test_sampler_frequencies_3x3_chi_square() -> None:
    n = 30_000
    region = torch.tensor([[1.0, 0.0, 2.0], [3.0, 4.0, 0.5], [0.0, 6.0, 1.5]])  # two zeros: never picked
    x = region.repeat(n, 1, 1, 1)
    index = stochastic_sample_index(x, (3, 3), (3, 3), torch.Generator().manual_seed(7)).flatten()
    counts = torch.bincount(index, minlength=9).double()
    p = region.flatten().double() / region.sum()
    assert counts[p == 0].sum() == 0
    expected = p[p > 0] * n
    chi2 = ((counts[p > 0] - expected) ** 2 / expected).sum().item()
    assert chi2 < CHI2_6DOF_999, (counts, chi2)


def test_sampler_positions_overlapping_and_rectangular() -> None:
    # Every sampled flat index lies inside its own window, and the sampled value is the input there.
    torch.manual_seed(8)
    x = torch.rand(3, 2, 9, 11)
    for k, s in [((2, 3), (1, 2)), ((3, 2), (2, 1)), ((1, 2), (1, 1))]:
        index = stochastic_sample_index(x, k, s, None)
        oh, ow = index.shape[-2:]
        rows, cols = index // x.shape[-1], index % x.shape[-1]
        top = torch.arange(oh)[:, None] * s[0]
        left = torch.arange(ow)[None, :] * s[1]
        assert ((rows >= top) & (rows < top + k[0]) & (cols >= left) & (cols < left + k[1])).all()
        out = stochastic_pool2d(x, k, s)
        assert out.shape == index.shape


def test_sampler_all_zero_region_and_gradient_to_the_pick() -> None:
    x = torch.zeros(1, 1, 4, 4, requires_grad=True)
    with torch.no_grad():
        x[0, 0, 0, 1] = 5.0  # region 0 has one positive entry; the others are all zero
    out = stochastic_pool2d(x, 2, generator=torch.Generator().manual_seed(0))
    assert out.flatten().tolist() == [5.0, 0.0, 0.0, 0.0]
    out.sum().backward()
    assert x.grad[0, 0, 0, 1] == 1 and x.grad.sum() == 4


@pytest.mark.parametrize(("k", "s"), [((2, 2), (1, 1)), ((3, 3), (1, 1)), ((2, 3), (2, 1)), ((1, 2), (1, 1))])
def test_separable_max_equals_max_pool_including_ties(k, s) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(9)
    x = torch.randint(0, 3, (2, 3, 9, 8)).double()  # many ties, as after a ReLU
    x[0, 0, 2, 2] = float("nan")
    torch.testing.assert_close(SeparableMaxFn.apply(x, k, s), F.max_pool2d(x, k, s), equal_nan=True)
    finite = torch.randint(0, 3, (2, 3, 9, 8)).double()
    _agree(lambda t: SeparableMaxFn.apply(t, k, s), lambda t: F.max_pool2d(t, k, s), finite)
