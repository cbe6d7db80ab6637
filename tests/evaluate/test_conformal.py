"""Split conformal prediction: the quantile, the scores (against MAPIE and the papers' formulas),
coverage over many seeds, set sizes, and alpha edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from cnnkit.errors import CnnkitError
from cnnkit.evaluate.conformal import (
    check_alpha,
    conformal_quantile,
    conformity_scores,
    label_scores,
    prediction_sets,
    summarize_sets,
)


def _synthetic(rng: np.random.Generator, n: int, k: int = 5, sharpness: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Softmax outputs of a 'model' and labels drawn from a slightly different distribution, so the model
    is informative but miscalibrated (conformal validity must not depend on calibration)."""
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.5 * sharpness
    z = sharpness * logits
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True), y


# ---------------------------------------------------------------- quantile and alpha


def test_qhat_is_the_ceil_rank_order_statistic() -> None:
    scores = np.array([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 1.0, 0.4, 0.8, 0.6])
    # n=10, alpha=0.2: k = ceil(11 * 0.8) = ceil(8.8) = 9 -> 9th smallest = 0.9
    assert conformal_quantile(scores, 0.2) == pytest.approx(0.9)
    # alpha=0.5: k = ceil(5.5) = 6 -> 0.6
    assert conformal_quantile(scores, 0.5) == pytest.approx(0.6)


def test_rank_is_not_fooled_by_float_roundoff() -> None:
    # (199 + 1) * (1 - 0.1) is 180.00000000000003 in floating point; the rank is 180.
    assert check_alpha(0.1, 199) == 180
    assert check_alpha(0.1, 200) == math.ceil(201 * 0.9)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, float("nan"), float("inf"), True, "0.1", None])
def test_alpha_outside_open_unit_interval_errors(alpha: object) -> None:
    with pytest.raises(CnnkitError, match="Expected 0 < alpha < 1"):
        conformal_quantile(np.arange(100.0), alpha)  # type: ignore[arg-type]


def test_alpha_too_small_for_n_errors() -> None:
    # n=10, alpha=0.05: ceil(11 * 0.95) = 11 > 10: no finite threshold has the guarantee.
    with pytest.raises(CnnkitError, match=r"too small for 10 calibration items.*alpha >= 0.09091"):
        conformal_quantile(np.arange(10.0), 0.05)
    # the smallest alpha that works is 1/(n+1)
    assert conformal_quantile(np.arange(10.0), 1 / 11) == 9.0


def test_empty_calibration_errors() -> None:
    with pytest.raises(CnnkitError, match="calibration split is empty"):
        conformal_quantile(np.array([]), 0.1)


def test_unknown_score_suggests() -> None:
    with pytest.raises(CnnkitError, match="did you mean 'raps'"):
        label_scores(np.full((2, 3), 1 / 3), "rasp")


# ---------------------------------------------------------------- scores against references


class _ProbaModel(ClassifierMixin, BaseEstimator):
    """A prefit 'classifier' whose input already is the probability matrix."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> _ProbaModel:
        self.classes_ = np.arange(np.asarray(X).shape[1])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X).argmax(1)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.2])
def test_lac_sets_match_mapie(seed: int, alpha: float) -> None:
    from mapie.classification import SplitConformalClassifier

    rng = np.random.default_rng(seed)
    p_cal, y_cal = _synthetic(rng, 300)
    p_test, _ = _synthetic(rng, 500)
    est = _ProbaModel().fit(p_cal, y_cal)
    mapie = SplitConformalClassifier(est, confidence_level=1 - alpha, conformity_score="lac", prefit=True)
    mapie.conformalize(p_cal, y_cal)
    _, ref_sets = mapie.predict_set(p_test)
    qhat = conformal_quantile(conformity_scores(p_cal, y_cal, "lac"), alpha)
    ours = prediction_sets(p_test, qhat, "lac", allow_empty=True)
    assert ours.shape == ref_sets[:, :, 0].shape
    assert (ours == ref_sets[:, :, 0]).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_aps_scores_and_quantile_match_mapie(seed: int) -> None:
    from mapie.conformity_scores import APSConformityScore
    from mapie.utils import _compute_classification_quantile

    rng = np.random.default_rng(seed)
    p, y = _synthetic(rng, 400)
    # MAPIE's APS score before randomization is the cumulated probability up to and including the true
    # label (u = 1); ours is the mass strictly before it (u = 0): they differ by exactly p_y.
    cum, _ = APSConformityScore.get_true_label_cumsum_proba(y, p, np.arange(p.shape[1]))
    ref = cum - p[np.arange(len(y)), y][:, None]
    ours = conformity_scores(p, y, "aps")
    np.testing.assert_allclose(ours, ref[:, 0], rtol=0, atol=1e-12)
    for alpha in (0.05, 0.1, 0.3):
        assert conformal_quantile(ours, alpha) == pytest.approx(
            float(_compute_classification_quantile(ref, np.array([alpha]))[0]), abs=1e-12
        )


def _raps_naive(p: np.ndarray, k_reg: int, lam: float) -> np.ndarray:
    """RAPS eq. (4) of Angelopoulos et al. 2021 with u = 0, by loops."""
    n, k = p.shape
    out = np.zeros_like(p)
    for i in range(n):
        for y in range(k):
            rank = 1 + sum(1 for c in range(k) if p[i, c] > p[i, y])
            rho = sum(p[i, c] for c in range(k) if p[i, c] > p[i, y])
            out[i, y] = rho + lam * max(0, rank - k_reg)
    return out


@pytest.mark.parametrize("k_reg,lam", [(1, 0.01), (2, 0.5), (0, 0.0)])
def test_raps_scores_match_naive_formula(k_reg: int, lam: float) -> None:
    rng = np.random.default_rng(3)
    p, _ = _synthetic(rng, 40, k=6)
    np.testing.assert_allclose(label_scores(p, "raps", k_reg=k_reg, lam=lam), _raps_naive(p, k_reg, lam), atol=1e-12)
    if lam == 0.0:  # RAPS without the penalty is APS
        np.testing.assert_allclose(label_scores(p, "raps", k_reg=k_reg, lam=0.0), label_scores(p, "aps"), atol=1e-15)


def test_sets_always_hold_top1_unless_empty_allowed() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]])
    # LAC scores are 1 - p; qhat 0.2 admits only p >= 0.8: nothing.
    assert not prediction_sets(p, 0.2, "lac", allow_empty=True).any()
    assert (prediction_sets(p, 0.2, "lac") == np.array([[1, 0, 0], [1, 0, 0]], bool)).all()
    # APS scores are the mass ranked before each label: (0, 0.7, 0.9) and (0, 0.4, 0.75).
    np.testing.assert_allclose(label_scores(p, "aps"), [[0, 0.7, 0.9], [0, 0.4, 0.75]], atol=1e-15)
    assert (prediction_sets(p, 0.5, "aps", allow_empty=True) == np.array([[1, 0, 0], [1, 1, 0]], bool)).all()
    # RAPS adds lam * (rank - k_reg)^+: with k_reg=1, lam=0.2 -> (0, 0.9, 1.3) and (0, 0.6, 1.15).
    np.testing.assert_allclose(label_scores(p, "raps", k_reg=1, lam=0.2), [[0, 0.9, 1.3], [0, 0.6, 1.15]], atol=1e-12)


def test_summarize_sets_by_hand() -> None:
    sets = np.array([[1, 1, 0], [0, 1, 0], [1, 1, 1], [0, 0, 1]], bool)
    y = np.array([0, 0, 2, 2])
    s = summarize_sets(sets, y, ["a", "b", "c"])
    assert s["coverage"] == 0.75
    assert s["mean_size"] == 1.75
    assert s["median_size"] == 1.5
    assert s["size_by_class"] == {"a": 1.5, "b": None, "c": 2.0}
    assert s["coverage_by_class"] == {"a": 0.5, "b": None, "c": 1.0}


# ---------------------------------------------------------------- statistical guarantees


@pytest.mark.parametrize("score", ["lac", "aps", "raps"])
@pytest.mark.parametrize("alpha", [0.1, 0.2])
def test_coverage_over_many_seeds(score: str, alpha: float) -> None:
    """Coverage given the calibration set is Beta(k, n + 1 - k) with mean k/(n+1) >= 1 - alpha
    (continuous scores). Averaged over 300 seeds, the mean coverage must not fall more than 4 standard
    errors below 1 - alpha: a quantile without the (n+1) correction (k = ceil(n(1-alpha))) sits at
    45/51 = 0.882 for alpha=0.1 and fails this. For LAC with raw sets the mean must also match k/(n+1)."""
    n, n_test, seeds = 50, 400, 300
    k = math.ceil((n + 1) * (1 - alpha) - 1e-9)
    covs = []
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        p_cal, y_cal = _synthetic(rng, n)
        p_test, y_test = _synthetic(rng, n_test)
        qhat = conformal_quantile(conformity_scores(p_cal, y_cal, score), alpha)
        sets = prediction_sets(p_test, qhat, score, allow_empty=True)
        covs.append(sets[np.arange(n_test), y_test].mean())
    covs = np.array(covs)
    se = covs.std(ddof=1) / math.sqrt(seeds)
    assert covs.mean() >= 1 - alpha - 4 * se, (covs.mean(), se)
    if score == "lac":
        assert abs(covs.mean() - k / (n + 1)) <= 4 * se, (covs.mean(), k / (n + 1), se)


@pytest.mark.parametrize("score", ["aps", "raps"])
def test_sets_shrink_as_the_model_improves(score: str) -> None:
    """A better model (a stronger signal for the true class in the logits) gets smaller sets."""
    rng = np.random.default_rng(7)

    def model_outputs(n: int, signal: float) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, n)
        z = rng.normal(size=(n, 10))
        z[np.arange(n), y] += signal
        p = np.exp(z - z.max(1, keepdims=True))
        return p / p.sum(1, keepdims=True), y

    sizes = []
    for signal in (0.5, 2.0, 4.0):
        p_cal, y_cal = model_outputs(2000, signal)
        p_test, y_test = model_outputs(2000, signal)
        qhat = conformal_quantile(conformity_scores(p_cal, y_cal, score), 0.1)
        sets = prediction_sets(p_test, qhat, score)
        sizes.append(sets.sum(1).mean())
        assert sets[np.arange(len(y_test)), y_test].mean() >= 0.88  # still valid
    assert sizes[0] > sizes[1] > sizes[2], sizes
    assert sizes[2] < 0.5 * sizes[0]


def test_coverage_on_a_held_out_half_over_many_splits() -> None:
    """Without a calibration split, evaluate_model calibrates on a seeded random half of the test items and
    measures on the other. For one fixed data set, a random split keeps the guarantee (the items are
    exchangeable given the bag), so the coverage averaged over split seeds must reach 1 - alpha within
    4 standard errors."""
    import torch
    from torch import nn

    from cnnkit.evaluate import evaluate_model

    class LogProbs(nn.Module):  # the input already is the model's output
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    alpha, seeds = 0.2, 200
    p, y = _synthetic(np.random.default_rng(5), 121)
    batches = [(torch.from_numpy(np.log(p)), torch.from_numpy(y))]
    covs = np.array([
        evaluate_model(LogProbs(), batches, conformal=alpha, holdout_seed=s)["conformal"]["coverage"] for s in range(seeds)
    ])
    se = covs.std(ddof=1) / math.sqrt(seeds)
    assert covs.mean() >= 1 - alpha - 4 * se, (covs.mean(), se)
    assert covs.std() > 0  # the seeds do hold out different halves
