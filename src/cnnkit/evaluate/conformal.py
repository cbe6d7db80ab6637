"""Split conformal prediction for classifiers: LAC, APS and RAPS conformity scores.

Given a calibration set of ``n`` items held out from training, the threshold ``qhat`` is the
``k = ceil((n + 1)(1 - alpha))``-th smallest calibration score (the ``k/n`` empirical quantile, taking the
lower value), and the prediction set of a new item is every label whose score is at most ``qhat``. For
exchangeable data this covers the true label with probability at least ``1 - alpha`` (Vovk et al. 2005;
Angelopoulos & Bates 2021, "A Gentle Introduction to Conformal Prediction", Sec. 1).

Scores (``p`` the softmax probabilities, ``o(y)`` the 1-based rank of label ``y`` when sorted by decreasing
probability, ``rho(y)`` the total probability of the labels ranked before ``y``):

- ``lac``: ``1 - p_y`` (Sadinle, Lei & Wasserman 2019, "least ambiguous set-valued classifiers").
- ``aps``: ``rho(y)`` (Romano, Sesia & Candes 2020, the score ``rho(y) + u * p_y`` of their eq. (5) with the
  uniform draw ``u`` fixed at 0). The set keeps the labels in order of probability up to and including
  the one whose cumulated mass first exceeds ``qhat``.
- ``raps``: ``rho(y) + lam * max(0, o(y) - k_reg)`` (Angelopoulos et al. 2021, "Uncertainty Sets for
  Image Classifiers using Conformal Prediction", eq. (4) / Algorithm 1, again with ``u = 0``).

Deviations:
    - Randomization is off (``u = 0``): sets are deterministic. Any fixed ``u`` keeps the guarantee (the
      score is still a fixed function of ``(x, y)``); ``u = 0`` gives the smallest deterministic sets.
      ``u = 1`` (the full cumulated mass, MAPIE's and the RAPS code's non-random calibration score) makes
      ``qhat`` approach 1 for accurate, confident models, so sets grow as the model improves.
    - The top-1 label is always in the set: for APS/RAPS its score is 0 (``rho = 0``, no penalty while
      ``k_reg >= 1``); for LAC it is added explicitly unless ``allow_empty=True``. Adding labels can only
      raise coverage.
    - RAPS' ``k_reg`` and ``lam`` are not tuned on data as in the paper's Sec. 2.3; the defaults
      (``k_reg=1``, ``lam=0.01``) suit ~10-class problems; pass others for many classes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..errors import CnnkitError, did_you_mean
from .metrics import _np

__all__ = [
    "SCORES",
    "check_alpha",
    "conformal_rank",
    "label_scores",
    "conformity_scores",
    "conformal_quantile",
    "prediction_sets",
    "summarize_sets",
]

SCORES = ("lac", "aps", "raps")


def _check_score(score: str) -> str:
    if score not in SCORES:
        raise CnnkitError(f"Unknown conformity score {score!r}{did_you_mean(str(score), SCORES)}; choose one of {', '.join(SCORES)}")
    return score


def conformal_rank(n: int, alpha: float) -> int:
    """``ceil((n + 1)(1 - alpha))``, guarded against float round-off (``0.9 * 200`` is 180.00000000000003)."""
    x = (n + 1) * (1 - alpha)
    return int(math.ceil(x - 1e-12 * max(1.0, abs(x))))


def check_alpha(alpha: float, n: int) -> int:
    """Validate ``alpha`` for ``n`` calibration items and return the rank ``k`` of ``qhat``.

    Raises:
        CnnkitError: ``alpha`` outside ``(0, 1)``, no calibration items, or ``alpha`` so small that
            ``ceil((n + 1)(1 - alpha)) > n`` (no finite threshold gives the guarantee).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or not 0 < alpha < 1:
        raise CnnkitError(f"Expected 0 < alpha < 1 for conformal prediction. Received: alpha={alpha!r}")
    if n < 1:
        raise CnnkitError("conformal prediction needs calibration data; the calibration split is empty")
    k = conformal_rank(n, alpha)
    if k > n:
        raise CnnkitError(
            f"alpha={alpha} is too small for {n} calibration items: ceil((n+1)(1-alpha))={k} > n; "
            f"use alpha >= {1 / (n + 1):.4g} or more calibration data"
        )
    return max(k, 1)


def label_scores(probs: np.ndarray | torch.Tensor, score: str = "lac", *, k_reg: int = 1, lam: float = 0.01) -> np.ndarray:
    """The conformity score of every candidate label, shape ``(n, K)`` (see the module docstring)."""
    _check_score(score)
    if k_reg < 0 or lam < 0:
        raise CnnkitError(f"Expected k_reg >= 0 and lam >= 0. Received: k_reg={k_reg}, lam={lam}")
    p = _np(probs).astype(np.float64)
    if p.ndim != 2:
        raise ValueError(f"Expected probabilities of shape (n, K). Received: {p.shape}")
    if score == "lac":
        return 1.0 - p
    order = np.argsort(-p, axis=1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=1)
    # rho(y): the mass ranked strictly before y (exactly 0 for the top-1 label).
    cum = np.concatenate([np.zeros_like(sorted_p[:, :1]), np.cumsum(sorted_p, axis=1)[:, :-1]], axis=1)
    if score == "raps":
        rank = np.arange(1, p.shape[1] + 1, dtype=np.float64)
        cum = cum + lam * np.maximum(0.0, rank - k_reg)[None, :]
    out = np.empty_like(p)
    np.put_along_axis(out, order, cum, axis=1)
    return out


def conformity_scores(
    probs: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, score: str = "lac", *, k_reg: int = 1, lam: float = 0.01
) -> np.ndarray:
    """The score of each item's true label, shape ``(n,)``."""
    s = label_scores(probs, score, k_reg=k_reg, lam=lam)
    y = _np(labels).astype(np.int64)
    return s[np.arange(len(y)), y]


def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    """``qhat``: the ``ceil((n + 1)(1 - alpha))``-th smallest of ``scores``."""
    s = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    k = check_alpha(alpha, len(s))
    return float(s[k - 1])


def prediction_sets(
    probs: np.ndarray | torch.Tensor,
    qhat: float,
    score: str = "lac",
    *,
    k_reg: int = 1,
    lam: float = 0.01,
    allow_empty: bool = False,
) -> np.ndarray:
    """Boolean ``(n, K)`` membership: label ``y`` is in the set of item ``i`` iff its score is ``<= qhat``.

    With ``allow_empty=False`` the top-1 label is always added (see Deviations in the module docstring).
    """
    p = _np(probs)
    sets = label_scores(p, score, k_reg=k_reg, lam=lam) <= qhat
    if not allow_empty and len(p):
        sets[np.arange(len(p)), np.argmax(p, axis=1)] = True
    return sets


def summarize_sets(sets: np.ndarray, labels: np.ndarray | torch.Tensor, class_names: list[str] | None = None) -> dict[str, Any]:
    """Empirical coverage, mean / median set size, and mean set size and coverage per true class."""
    sets = np.asarray(sets, dtype=bool)
    y = _np(labels).astype(np.int64)
    sizes = sets.sum(axis=1)
    covered = sets[np.arange(len(y)), y]
    k = sets.shape[1]
    names = class_names if class_names is not None else [str(i) for i in range(k)]
    by_class: dict[str, float | None] = {}
    cov_by_class: dict[str, float | None] = {}
    for c in range(k):
        m = y == c
        by_class[str(names[c])] = float(sizes[m].mean()) if m.any() else None
        cov_by_class[str(names[c])] = float(covered[m].mean()) if m.any() else None
    return {
        "coverage": float(covered.mean()) if len(y) else float("nan"),
        "mean_size": float(sizes.mean()) if len(y) else float("nan"),
        "median_size": float(np.median(sizes)) if len(y) else float("nan"),
        "size_by_class": by_class,
        "coverage_by_class": cov_by_class,
    }
