"""Translation audit: consistency and feature-map equivariance on networks whose answer is known."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from cnnkit.errors import CnnkitError
from cnnkit.explain import audit, audit_model, equivariance_errors, format_audit, shift_consistency
from cnnkit.explain.audit import shift_batch


def _circular_net(pool: nn.Module | None = None) -> nn.Sequential:
    """Circularly padded stride-1 convs and a 2x2 pool: exactly equivariant to circular shifts that are
    multiples of the cumulative stride."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        pool if pool is not None else nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3),
    ).eval()


def test_shift_batch_is_per_image_roll() -> None:
    x = torch.randn(4, 2, 6, 7)
    dy, dx = torch.tensor([0, 1, -2, 3]), torch.tensor([2, -1, 0, 6])
    out = shift_batch(x, dy, dx)
    for i in range(4):
        torch.testing.assert_close(out[i], torch.roll(x[i], (int(dy[i]), int(dx[i])), dims=(-2, -1)))


def test_equivariance_of_a_circular_network() -> None:
    net = _circular_net()
    x = torch.randn(8, 1, 16, 16)
    layers = {r["layer"]: r for r in equivariance_errors(net, x, shifts=4, max_shift=4)}
    assert list(layers) == ["0", "2", "3", "5"]  # convs and pools; the adaptive (global) pool is not spatial
    assert [layers[n]["stride"] for n in ("0", "2", "3", "5")] == [1, 2, 2, 4]
    for r in layers.values():
        assert r["error_aligned"] < 1e-5, r  # exact equivariance for shifts that are multiples of the stride
        assert all(dy % r["stride"] == 0 and dx % r["stride"] == 0 for dy, dx in r["aligned_offsets"])
    assert layers["0"]["error_one_pixel"] < 1e-5  # stride 1: every shift is aligned
    assert layers["2"]["error_one_pixel"] > 0.05  # max-pooling aliases a one-pixel shift (Zhang 2019)


def test_zero_padding_breaks_exact_equivariance_at_the_border() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Flatten(), nn.Linear(3 * 64, 2)).eval()
    (r,) = equivariance_errors(net, torch.randn(4, 1, 8, 8), shifts=3, max_shift=2)
    assert r["stride"] == 1 and 1e-3 < r["error_aligned"] < 1.0


def test_stride_when_the_shift_budget_is_smaller_than_the_stride() -> None:
    net = _circular_net()
    layers = {r["layer"]: r for r in equivariance_errors(net, torch.randn(2, 1, 16, 16), shifts=2, max_shift=1)}
    # stride 4 > max_shift 1: the smallest aligned offset (4 pixels) is used, and reported
    assert all(max(abs(dy), abs(dx)) == 4 for dy, dx in layers["5"]["aligned_offsets"])


def test_maxblurpool_is_one_layer_with_its_stride() -> None:
    from cnnkit.layers import MaxBlurPool2d

    net = _circular_net(MaxBlurPool2d(4))
    layers = {r["layer"]: r for r in equivariance_errors(net, torch.randn(2, 1, 16, 16), shifts=2, max_shift=2)}
    assert layers["2"]["type"] == "MaxBlurPool2d" and layers["2"]["stride"] == 2 and layers["5"]["stride"] == 4


def test_consistency_of_invariant_and_non_invariant_models() -> None:
    x = torch.randn(40, 1, 12, 12)
    batches = [(x[:20], torch.zeros(20, dtype=torch.long)), (x[20:], torch.zeros(20, dtype=torch.long))]
    # circular stride-1 convs + global average pooling: exactly invariant to circular shifts
    torch.manual_seed(0)
    inv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)).eval()
    r = shift_consistency(inv, batches, shifts=4, max_shift=3)
    assert r["consistency"] == 1.0 and r["n_pairs"] == 160 and r["n_images"] == 40
    assert r["accuracy"] == r["accuracy_shifted"]
    # a linear layer on raw pixels is not
    lin = nn.Sequential(nn.Flatten(), nn.Linear(144, 5)).eval()
    assert shift_consistency(lin, batches, shifts=4, max_shift=3)["consistency"] < 0.8
    # seeded
    assert shift_consistency(lin, batches, shifts=4, max_shift=3, seed=1) == shift_consistency(lin, batches, shifts=4, max_shift=3, seed=1)


def test_audit_model_and_errors() -> None:
    net = _circular_net()
    x = torch.randn(30, 1, 16, 16)
    res = audit_model(net, [(x, torch.zeros(30, dtype=torch.long))], shifts=2, max_shift=2, equivariance_images=10)
    assert res["shift_mode"] == "circular" and len(res["layers"]) == 4
    assert "consistency" in format_audit(res) and "equivariance" in format_audit(res)
    with pytest.raises(CnnkitError, match="Expected shifts >= 1"):
        audit_model(net, [], shifts=0)
    with pytest.raises(CnnkitError, match="Expected max_shift >= 1"):
        audit_model(net, [], max_shift=0)
    with pytest.raises(CnnkitError, match="Expected max_shift smaller than the input"):
        shift_consistency(net, [(torch.randn(1, 1, 4, 4), torch.zeros(1, dtype=torch.long))], max_shift=4)


def test_audit_run_folder(digits_run: Path) -> None:
    res = audit(digits_run, shifts=2, max_shift=2, limit=20)
    assert res["n_images"] == 20 and res["n_pairs"] == 40
    assert 0 <= res["consistency"] <= 1
    assert [r["stride"] for r in res["layers"]] == [1, 2, 2]
    assert res["data"] == "digits" and res["accuracy"] > 0.5  # ~80 steps on digits
    with pytest.raises(CnnkitError, match="Expected limit >= 1"):
        audit(digits_run, limit=0)
