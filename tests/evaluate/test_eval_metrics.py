"""Metrics against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from cnnkit.evaluate.metrics import (
    accuracy,
    confusion_matrix,
    negative_log_likelihood,
    per_class_metrics,
    softmax,
    top_k_accuracy,
)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 300)
    z = rng.normal(size=(300, 6)) * 2
    z[np.arange(300), y] += 1.0
    return z, y


def test_accuracy_and_top_k(data: tuple[np.ndarray, np.ndarray]) -> None:
    z, y = data
    assert accuracy(z, y) == pytest.approx(skm.accuracy_score(y, z.argmax(1)))
    for k in (1, 2, 3, 5):
        assert top_k_accuracy(z, y, k) == pytest.approx(skm.top_k_accuracy_score(y, z, k=k, labels=np.arange(6)))
    assert top_k_accuracy(z, y, 100) == 1.0  # k capped at the class count
    with pytest.raises(ValueError, match="Expected k >= 1"):
        top_k_accuracy(z, y, 0)


def test_nll_matches_log_loss(data: tuple[np.ndarray, np.ndarray]) -> None:
    z, y = data
    assert negative_log_likelihood(z, y) == pytest.approx(skm.log_loss(y, softmax(z), labels=np.arange(6)), rel=1e-9)
    # huge logits do not overflow
    big = np.array([[1000.0, 0.0], [0.0, 1000.0]])
    assert negative_log_likelihood(big, np.array([0, 0])) == pytest.approx(500.0)


def test_confusion_matrix_and_per_class(data: tuple[np.ndarray, np.ndarray]) -> None:
    z, y = data
    pred = z.argmax(1)
    pred[pred == 5] = 4  # class 5 never predicted: precision 0 by convention
    cm = confusion_matrix(y, pred, 6)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, pred, labels=np.arange(6)))
    pcm = per_class_metrics(cm, list("abcdef"))
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=np.arange(6), zero_division=0)
    for i, name in enumerate("abcdef"):
        assert pcm[name]["precision"] == pytest.approx(p[i])
        assert pcm[name]["recall"] == pytest.approx(r[i])
        assert pcm[name]["f1"] == pytest.approx(f[i])
        assert pcm[name]["support"] == s[i]
    assert pcm["f"]["precision"] == 0.0
