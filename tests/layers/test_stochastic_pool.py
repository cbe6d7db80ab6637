"""StochasticPool2d: sampling frequencies (seeded chi-square test), evaluation oracle, errors."""

from __future__ import annotations

import pytest
import torch

from cnnkit.layers import StochasticPool2d
from cnnkit.layers.functional import stochastic_pool2d

from . import _naive

# 99.9% quantile of chi-square with 3 degrees of freedom: a correct sampler fails 1 run in 1000, and
# the seed is fixed, so the test is deterministic.
CHI2_3DOF_999 = 16.266


def test_sampling_frequencies_follow_a_i_over_sum() -> None:
    torch.manual_seed(0)
    n = 20_000
    region = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # p = 0.1, 0.2, 0.3, 0.4
    x = region.repeat(n, 1, 1, 1)
    out = StochasticPool2d(2).train()(x).flatten()
    counts = torch.stack([(out == v).sum() for v in (1.0, 2.0, 3.0, 4.0)]).double()
    assert counts.sum() == n
    expected = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64) * n
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < CHI2_3DOF_999, (counts, chi2)


def test_sampling_with_overlapping_regions_keeps_marginals() -> None:
    torch.manual_seed(1)
    n = 20_000
    row = torch.tensor([[1.0, 3.0, 0.0]])  # regions [1, 3] and [3, 0] with stride 1
    out = stochastic_pool2d(row.repeat(n, 1, 1, 1), (1, 2), (1, 1))
    first, second = out[..., 0].flatten(), out[..., 1].flatten()
    freq = (first == 3.0).double().mean().item()
    assert abs(freq - 0.75) < 4 * (0.75 * 0.25 / n) ** 0.5
    assert (second == 3.0).all()  # 0 has probability 0


def test_overlapping_regions_sample_independently() -> None:
    # Regions [1, 3] and [3, 1] share the 3. Independent draws pick it in both with probability
    # 0.75^2 = 0.5625; a shared draw (one race over the row) would give 3 / 5 = 0.6.
    torch.manual_seed(6)
    n = 20_000
    out = stochastic_pool2d(torch.tensor([[1.0, 3.0, 1.0]]).repeat(n, 1, 1, 1), (1, 2), (1, 1))
    both = ((out[..., 0] == 3.0) & (out[..., 1] == 3.0)).double().mean().item()
    assert abs(both - 0.5625) < 4 * (0.5625 * 0.4375 / n) ** 0.5


def test_zero_region_gives_zero_and_gradient_goes_to_the_pick() -> None:
    torch.manual_seed(2)
    x = torch.tensor([[[[0.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]], requires_grad=True)
    out = StochasticPool2d(2).train()(x)
    assert out.flatten().tolist() == [0.0, 2.0]
    out.sum().backward()
    assert x.grad.sum() == 2 and x.grad[0, 0, 0, 2] == 1  # one unit per region, at the picked position


def test_evaluation_is_probability_weighting_naive_loop() -> None:
    torch.manual_seed(3)
    x = torch.rand(2, 3, 6, 7, dtype=torch.float64)
    x[0, 0, :2, :2] = 0.0  # an all-zero region
    expected = _naive.window_reduce(x, 2, 2, 0, lambda v: sum(a * a for a in v) / sum(v) if sum(v) > 0 else 0.0)
    torch.testing.assert_close(StochasticPool2d(2).eval()(x), expected)


def test_evaluation_equals_the_training_expectation() -> None:
    # E[sample] = sum_i p_i a_i: the Monte-Carlo mean of training outputs approaches the eval output.
    torch.manual_seed(4)
    region = torch.tensor([[[[0.5, 1.0], [2.0, 0.0]]]])
    samples = StochasticPool2d(2).train()(region.repeat(40_000, 1, 1, 1)).flatten()
    expected = StochasticPool2d(2).eval()(region).item()
    assert expected == pytest.approx((0.25 + 1 + 4) / 3.5)
    assert abs(samples.mean().item() - expected) < 4 * samples.std().item() / 200


def test_negative_input_raises() -> None:
    with pytest.raises(ValueError, match="Expected non-negative input.*Received: min=-0.5"):
        StochasticPool2d(2)(torch.tensor([[[[1.0, -0.5], [0.0, 1.0]]]]))


def test_training_mode_under_torch_compile() -> None:
    torch._dynamo.reset()
    torch.manual_seed(5)
    pool = torch.compile(StochasticPool2d(2).train(), backend="aot_eager", fullgraph=True)
    x = torch.rand(2, 3, 4, 4, requires_grad=True)
    out = pool(x)
    # Every output is one of its region's four inputs.
    regions = x.detach().unfold(2, 2, 2).unfold(3, 2, 2).flatten(-2)
    assert (regions == out.detach()[..., None]).any(-1).all()
    out.sum().backward()
    assert x.grad.sum() == out.numel()
