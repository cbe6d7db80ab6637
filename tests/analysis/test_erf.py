"""effective_receptive_field() against an exact oracle and the theoretical bound."""

import numpy as np
import pytest
import torch
from torch import nn

from cnnkit.analysis import effective_receptive_field
from cnnkit.errors import ConfigError


def _shortest_window_brute_force(w: np.ndarray, mass: float) -> int:
    total = w.sum()
    best = len(w)
    for i in range(len(w)):
        for j in range(i, len(w)):
            if w[i : j + 1].sum() >= mass * total - 1e-9 * total:
                best = min(best, j - i + 1)
                break
    return best


def test_uniform_linear_stack_matches_trinomial_oracle():
    # n stacked 1-D convs with kernel [1, 1, 1] and no nonlinearity: the gradient of the centre unit is
    # the trinomial coefficients of (1 + x + x^2)^n, whatever the input (Luo et al. 2016, Sec. 2.1).
    n = 10
    net = nn.Sequential(*(nn.Conv1d(1, 1, 3, bias=False) for _ in range(n)))
    for conv in net:
        nn.init.ones_(conv.weight)
    coeffs = np.array([1.0])
    for _ in range(n):
        coeffs = np.convolve(coeffs, [1.0, 1.0, 1.0])
    r = effective_receptive_field(net, (1, 2 * n + 1), mass=0.95, num_samples=2)
    assert r.theoretical == (2 * n + 1,)
    assert r.support == (2 * n + 1,)
    assert r.measured == (_shortest_window_brute_force(coeffs, 0.95),)
    assert r.measured[0] < r.theoretical[0]  # Luo et al.: the effective field is much smaller
    np.testing.assert_allclose(r.gradient.numpy() / r.gradient.numpy().sum(), coeffs / coeffs.sum(), rtol=1e-5)


def test_measured_within_theoretical_for_random_cnn():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.Conv2d(4, 4, 3, dilation=2, padding=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    )  # fmt: skip
    r = effective_receptive_field(net, (2, 32, 32))
    assert r.layer == "6"  # the last layer with a spatial field (before global pooling)
    assert r.theoretical == (16, 16)  # 3 -> 4 (pool: jump 2) -> 4 + 2*2 = 8 -> 8 + (3-1)*2*2 = 16
    for m, s, t in zip(r.measured, r.support, r.theoretical_in_input):
        assert 0 < m <= s <= t
    full = effective_receptive_field(net, (2, 32, 32), mass=1.0)
    assert full.measured == full.support


def test_mass_and_layer_validation():
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten(), nn.Linear(36, 2))
    with pytest.raises(ConfigError, match="Expected 0 < mass <= 1"):
        effective_receptive_field(net, (1, 8, 8), mass=0)
    with pytest.raises(ConfigError, match="no spatial receptive field"):
        effective_receptive_field(net, (1, 8, 8), layer="2")
    r = effective_receptive_field(net, (1, 8, 8), layer="0")
    assert r.theoretical == (3, 3) and r.to_dict()["layer"] == "0"


def test_token_models_are_rejected():
    from cnnkit.models import create_model

    with pytest.raises(ConfigError, match="float input"):
        effective_receptive_field(create_model("textcnn", vocab_size=10, embed_dim=4), (20,))
