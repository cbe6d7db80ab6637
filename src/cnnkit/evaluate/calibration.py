"""Calibration: expected calibration error, reliability diagrams and temperature scaling.

Reference:
    Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern Neural Networks", ICML 2017:
    ECE is eq. (3) with M equal-width confidence bins; temperature scaling is Sec. 4.2
    (``softmax(z / T)`` with one scalar ``T > 0`` fitted by minimizing the NLL on validation data).

Deviations:
    The temperature is fitted by Newton's method on ``1/T`` rather than L-BFGS (same minimum: the NLL
    is convex in ``1/T``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._plotting import save_figure
from .metrics import _np, softmax

__all__ = ["reliability_bins", "expected_calibration_error", "fit_temperature", "plot_reliability"]


def reliability_bins(probs: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, n_bins: int = 15) -> dict[str, Any]:
    """Per-bin accuracy, mean confidence and count over ``n_bins`` equal-width confidence bins.

    Bin ``m`` holds the items whose top-1 confidence lies in ``((m-1)/M, m/M]`` (Guo et al. 2017, Sec. 2);
    a confidence of exactly 0 cannot occur for a softmax, so the first bin's open left edge loses nothing.

    Returns:
        ``{"edges": [M+1], "accuracy": [M], "confidence": [M], "count": [M]}``; empty bins have
        accuracy and confidence ``None``.
    """
    if n_bins < 1:
        raise ValueError(f"Expected n_bins >= 1. Received: n_bins={n_bins}")
    p, y = _np(probs).astype(np.float64), _np(labels)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # searchsorted(side="left") - 1 puts conf in ((m-1)/M, m/M] into bin m-1.
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=correct, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    acc = [float(a / c) if c else None for a, c in zip(acc_sum, count)]
    cmean = [float(s / c) if c else None for s, c in zip(conf_sum, count)]
    return {"edges": edges.tolist(), "accuracy": acc, "confidence": cmean, "count": count.astype(int).tolist()}


def expected_calibration_error(probs: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, n_bins: int = 15) -> float:
    """ECE = sum_m |B_m| / n * |acc(B_m) - conf(B_m)| (Guo et al. 2017, eq. 3)."""
    bins = reliability_bins(probs, labels, n_bins)
    n = sum(bins["count"])
    if n == 0:
        return float("nan")
    return float(
        sum(c / n * abs(a - f) for a, f, c in zip(bins["accuracy"], bins["confidence"], bins["count"]) if c)
    )


def fit_temperature(logits: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, *, max_iter: int = 100) -> float:
    """The temperature ``T`` minimizing the NLL of ``softmax(logits / T)`` (Guo et al. 2017, Sec. 4.2).

    Newton's method on ``b = 1 / T`` in float64: ``NLL(b) = mean(logsumexp(b z) - b z_y)`` is convex in
    ``b`` (its second derivative is the mean variance of the logits under ``softmax(b z)``), so the
    minimum found is the global one. (Guo et al. used L-BFGS; for one convex parameter Newton converges
    in a handful of steps.)

    Raises:
        ValueError: no items.
    """
    z = _np(logits).astype(np.float64)
    y = _np(labels).astype(np.int64)
    if len(y) == 0:
        raise ValueError("Expected at least one item to fit a temperature. Received: 0")
    zy = z[np.arange(len(y)), y]

    def nll(b: float) -> float:
        bz = b * z
        m = bz.max(axis=1)
        return float(np.mean(m + np.log(np.exp(bz - m[:, None]).sum(axis=1)) - b * zy))

    b, f = 1.0, nll(1.0)
    for _ in range(max_iter):
        p = softmax(b * z)
        ez = (p * z).sum(axis=1)
        grad = float(np.mean(ez - zy))
        hess = float(np.mean((p * z * z).sum(axis=1) - ez * ez))
        if hess <= 1e-15:
            break
        step = grad / hess
        # Damped: halve the step until the NLL does not increase and b stays positive.
        for _ in range(60):
            cand = b - step
            if cand > 0 and (fc := nll(cand)) <= f:
                break
            step /= 2
        else:
            break
        converged = abs(cand - b) <= 1e-10 * max(b, 1e-10)
        b, f = cand, fc
        if converged:
            break
    # Perfectly separable data drive T -> 0; clamp to a range where softmax stays finite and meaningful.
    return float(np.clip(1.0 / b, 1e-2, 1e2))


def plot_reliability(bins: dict[str, Any], path: str | Path, *, title: str = "Reliability diagram", ece: float | None = None) -> Path:
    """Draw the reliability diagram (accuracy per confidence bin against the diagonal) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.asarray(bins["edges"])
    width = edges[1:] - edges[:-1]
    acc = np.array([a if a is not None else 0.0 for a in bins["accuracy"]])
    conf = np.array([c if c is not None else 0.0 for c in bins["confidence"]])
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    try:
        ax.bar(edges[:-1], acc, width=width, align="edge", edgecolor="black", label="accuracy")
        ax.bar(edges[:-1], conf - acc, bottom=acc, width=width, align="edge", color="red", alpha=0.3, label="gap")
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_title(title + (f" (ECE {ece:.3f})" if ece is not None else ""))
        ax.legend(loc="upper left")
        path = save_figure(fig, path)
    finally:
        plt.close(fig)
    return Path(path)


def calibrated_probs(logits: np.ndarray | torch.Tensor, temperature: float = 1.0) -> np.ndarray:
    """``softmax(logits / T)``."""
    return softmax(_np(logits).astype(np.float64) / temperature)
