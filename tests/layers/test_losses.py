"""The three loss layers against hand-computed values and naive formulas."""

from __future__ import annotations

import math

import pytest
import torch

from cnnkit.layers.losses import LOSSES, euclidean, sigmoid_cross_entropy, softmax_cross_entropy


def test_softmax_cross_entropy_naive() -> None:
    torch.manual_seed(0)
    z = torch.randn(5, 4, dtype=torch.float64)
    y = torch.tensor([0, 3, 1, 1, 2])
    expected = -sum(math.log(math.exp(z[n, y[n]]) / sum(math.exp(v) for v in z[n].tolist())) for n in range(5)) / 5
    assert softmax_cross_entropy(z, y).item() == pytest.approx(expected)
    assert softmax_cross_entropy(z, y, reduction="sum").item() == pytest.approx(5 * expected)


def test_label_smoothing_formula() -> None:
    # Target (1 - eps) one_hot + eps / K: loss = -sum_k q_k log p_k.
    z = torch.tensor([[2.0, 0.0, -1.0]], dtype=torch.float64)
    logp = torch.log_softmax(z, 1)[0]
    q = torch.tensor([0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3], dtype=torch.float64)
    expected = -(q * logp).sum().item()
    assert softmax_cross_entropy(z, torch.tensor([0]), label_smoothing=0.1).item() == pytest.approx(expected)
    probs = torch.tensor([[0.2, 0.5, 0.3]], dtype=torch.float64)  # soft targets
    assert softmax_cross_entropy(z, probs).item() == pytest.approx(-(probs[0] * logp).sum().item())


def test_sigmoid_cross_entropy_naive_and_stable() -> None:
    z = torch.tensor([[0.5, -1.0], [2.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    s = torch.sigmoid(z)
    expected = -(t * s.log() + (1 - t) * (1 - s).log()).mean().item()
    assert sigmoid_cross_entropy(z, t).item() == pytest.approx(expected)
    big = sigmoid_cross_entropy(torch.tensor([[1e4, -1e4]]), torch.tensor([[0.0, 1.0]]))
    assert big.item() == pytest.approx(1e4)  # log(1 + e^1e4) = 1e4, no overflow


def test_euclidean_caffe_normalization() -> None:
    pred = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, 0.0]])
    target = torch.zeros(3, 2)
    assert euclidean(pred, target).item() == pytest.approx((1 + 4 + 0 + 9) / (2 * 3))


def test_registry_and_errors() -> None:
    assert LOSSES.get("softmax_cross_entropy") is softmax_cross_entropy
    assert set(LOSSES.names()) == {"softmax_cross_entropy", "sigmoid_cross_entropy", "euclidean"}
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="0 <= label_smoothing <= 1. Received: label_smoothing=1.5"):
        softmax_cross_entropy(z, torch.tensor([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="Received: reduction='avg'"):
        sigmoid_cross_entropy(z, z, reduction="avg")
    with pytest.raises(ValueError, match="same shape"):
        euclidean(z, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="same shape"):
        sigmoid_cross_entropy(z, torch.zeros(2))
