"""ECE by hand, reliability bins, and temperature scaling recovering a known temperature."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit.evaluate.calibration import (
    expected_calibration_error,
    fit_temperature,
    plot_reliability,
    reliability_bins,
)
from cnnkit.evaluate.metrics import negative_log_likelihood, softmax


def test_ece_by_hand() -> None:
    # 2 bins. Confidences 0.9, 0.8 (bin 2, both correct: acc 1, conf 0.85) and 0.3 for a 4-class row
    # (bin 1, wrong: acc 0, conf 0.3). ECE = 2/3 * 0.15 + 1/3 * 0.3 = 0.2.
    p = np.array([[0.9, 0.1, 0, 0], [0.2, 0.8, 0, 0], [0.3, 0.25, 0.25, 0.2]])
    y = np.array([0, 1, 1])
    bins = reliability_bins(p, y, 2)
    assert bins["count"] == [1, 2]
    assert bins["accuracy"] == [0.0, 1.0]
    assert bins["confidence"] == pytest.approx([0.3, 0.85])
    assert expected_calibration_error(p, y, 2) == pytest.approx(0.2)


def test_bin_edges_are_right_closed() -> None:
    # confidence exactly 0.5 belongs to the bin (0, 0.5] of 2 bins
    p = np.array([[0.5, 0.5]])
    assert reliability_bins(p, np.array([0]), 2)["count"] == [1, 0]


def _sample_labels(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One label per row drawn from the row's distribution (inverse CDF)."""
    u = rng.random((len(p), 1))
    return np.minimum((p.cumsum(1) < u).sum(1), p.shape[1] - 1)


def test_perfectly_calibrated_samples_have_small_ece() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20000, 4)) * 2
    p = softmax(z)
    y = _sample_labels(rng, p)  # labels drawn from the model itself
    assert expected_calibration_error(p, y, 15) < 0.02
    assert expected_calibration_error(p, (p.argmax(1) + 1) % 4, 15) > 0.4  # always wrong


def test_temperature_scaling_recovers_overconfidence() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=(5000, 5)) * 1.5
    y = _sample_labels(rng, softmax(z))
    t = fit_temperature(3.0 * z, y)  # a model 3x overconfident
    assert t == pytest.approx(3.0, rel=0.1)
    # it is the NLL minimum: a fine grid finds nothing better
    grid = np.linspace(1.0, 6.0, 201)
    best = grid[np.argmin([negative_log_likelihood(3.0 * z / g, y) for g in grid])]
    assert t == pytest.approx(best, abs=0.03)
    assert negative_log_likelihood(3.0 * z / t, y) < negative_log_likelihood(3.0 * z, y)


def test_reliability_png(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    p = softmax(rng.normal(size=(100, 3)))
    bins = reliability_bins(p, rng.integers(0, 3, 100), 10)
    path = plot_reliability(bins, tmp_path / "r.png", ece=0.1)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
