"""ECE by hand, reliability bins, and temperature scaling recovering a known temperature."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit.evaluate.calibration import (
    T_MAX,
    T_MIN,
    choose_temperature,
    expected_calibration_error,
    fit_temperature,
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


# ---------------------------------------------------------------- bounded fit, and when to keep T = 1


def _confident(rng: np.random.Generator, n: int, n_errors: int, error_margin: float) -> tuple[np.ndarray, np.ndarray]:
    """10-class logits, right with margin 3..6 except the first ``n_errors`` items, wrong by ``error_margin``."""
    y = rng.integers(0, 10, n)
    z = np.zeros((n, 10))
    z[np.arange(n), y] = rng.uniform(3, 6, n)
    for i in range(n_errors):
        z[i, (y[i] + 1) % 10] = z[i, y[i]] + error_margin
    return z, y


def test_fit_is_bounded() -> None:
    rng = np.random.default_rng(0)
    z, y = _confident(rng, 300, 0, 0.0)
    # No errors: the NLL falls all the way to T -> 0; the fit stops at the bound.
    assert (T_MIN, T_MAX) == (0.05, 20.0)
    assert fit_temperature(z, y) == pytest.approx(T_MIN, rel=1e-9)
    # Always the least likely class: the NLL falls as T grows; the fit stops at the upper bound.
    assert fit_temperature(z, z.argmin(axis=1)) == pytest.approx(T_MAX, rel=1e-9)
    assert fit_temperature(z, y, bounds=(0.5, 2.0)) == pytest.approx(0.5)
    assert fit_temperature(np.zeros((5, 3)), np.zeros(5, dtype=int)) == 1.0  # flat NLL: nothing to fit
    with pytest.raises(ValueError, match="Expected bounds 0 < T_min <= T_max"):
        fit_temperature(z, y, bounds=(0.0, 2.0))


def test_near_perfect_split_keeps_t1_and_says_why() -> None:
    """The issue's failure: a split with (almost) no errors fits a tiny T that makes the test NLL several
    times worse. choose_temperature refuses to fit it."""
    rng = np.random.default_rng(0)
    z_cal, y_cal = _confident(rng, 300, 0, 0.0)
    z_test, y_test = _confident(rng, 450, 4, 2.0)
    raw = fit_temperature(z_cal, y_cal)
    assert negative_log_likelihood(z_test / raw, y_test) > 2 * negative_log_likelihood(z_test, y_test)
    for n_errors in (0, 1, 4):
        zc, yc = _confident(np.random.default_rng(1), 300, n_errors, 0.05)
        choice = choose_temperature(zc, yc)
        assert choice.temperature == 1.0 and choice.fitted is None and choice.n_errors == n_errors
        assert choice.reason is not None
        assert f"makes {n_errors} error" in choice.reason and "at least 5" in choice.reason


def test_small_split_keeps_t1() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(40, 5)) * 3  # 3x over-confident, but only 40 items
    y = _sample_labels(rng, softmax(z / 3))
    choice = choose_temperature(z, y)
    assert choice.temperature == 1.0
    assert choice.reason == "only 40 calibration items; temperature scaling needs at least 50"
    assert choose_temperature(z, y, min_items=40).reason is None  # the same data, allowed, is fitted


def test_fit_that_does_not_help_held_out_items_keeps_t1() -> None:
    # A calibrated model (labels drawn from its own softmax): the fitted T is noise around 1, and on this
    # seed the 2-fold check finds that it raises the held-out NLL.
    rng = np.random.default_rng(2)
    z = rng.normal(size=(80, 4)) * 2
    y = _sample_labels(rng, softmax(z))
    choice = choose_temperature(z, y)
    assert choice.temperature == 1.0 and choice.fitted == pytest.approx(fit_temperature(z, y))
    assert choice.reason is not None and "does not lower the NLL on held-out calibration items" in choice.reason
    assert choice.held_out_nll_scaled >= choice.held_out_nll  # type: ignore[operator]


def test_a_real_overconfidence_is_fitted_and_applied() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=(2000, 5)) * 1.5
    y = _sample_labels(rng, softmax(z))
    choice = choose_temperature(3.0 * z, y)
    assert choice.reason is None and choice.temperature == choice.fitted == pytest.approx(3.0, rel=0.15)
    assert choice.held_out_nll_scaled < choice.held_out_nll  # type: ignore[operator]
    assert choice.nll_scaled < choice.nll  # type: ignore[operator]
