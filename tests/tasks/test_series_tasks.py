"""Forecasting and anomaly tasks against numpy / scikit-learn oracles; spectral residual against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit.errors import DataError
from cnnkit.models.srcnn import spectral_residual
from cnnkit.tasks import create_task
from cnnkit.tasks.forecasting import pinball_loss


def test_pinball_loss_by_hand() -> None:
    pred = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # (B=1, Q=2, H=2)
    y = torch.tensor([[2.0, 2.0]])
    # q=0.1: diffs 1, 0 -> 0.1, 0; q=0.9: diffs -1, -2 -> 0.1, 0.2
    assert pinball_loss(pred, y, torch.tensor([0.1, 0.9])).item() == pytest.approx((0.1 + 0 + 0.1 + 0.2) / 4)


def test_forecast_metrics_match_numpy() -> None:
    rng = np.random.default_rng(0)
    task = create_task("forecasting", horizon=3, season=2)
    x = torch.tensor(rng.normal(10, 2, (5, 1, 8)), dtype=torch.float32)
    y = torch.tensor(rng.normal(10, 2, (5, 3)), dtype=torch.float32)
    fixed = torch.tensor(rng.normal(0, 1, (5, 3)), dtype=torch.float32)
    step = task.eval_step(lambda z: fixed, x, y)
    state = task.metric_state(torch.device("cpu"))
    task.update_metrics(state, step)
    m = task.compute_metrics(state)
    xn = x.numpy()[:, 0].astype(np.float64)
    point = fixed.numpy() * xn.std(1, keepdims=True) + xn.mean(1, keepdims=True)
    e = point - y.numpy()
    assert m["mae"] == pytest.approx(np.abs(e).mean(), rel=1e-5)
    assert m["rmse"] == pytest.approx(np.sqrt((e**2).mean()), rel=1e-5)
    assert m["smape"] == pytest.approx((200 * np.abs(e) / (np.abs(point) + np.abs(y.numpy()))).mean(), rel=1e-5)
    scale = np.abs(xn[:, 2:] - xn[:, :-2]).mean(1)
    assert m["mase"] == pytest.approx((np.abs(e).mean(1) / scale).mean(), rel=1e-5)


def test_quantile_coverage_and_shape_errors() -> None:
    task = create_task("forecasting", horizon=2, quantiles=[0.1, 0.9])
    x = torch.zeros(4, 1, 5)
    x[:, 0, 0] = 1.0  # std > 0
    y = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, -5.0], [0.0, 0.0]])
    out = torch.tensor([[-1.0, -1.0, 1.0, 1.0]]).repeat(4, 1)
    state = task.metric_state(torch.device("cpu"))
    task.update_metrics(state, task.eval_step(lambda z: out, x, y))
    m = task.compute_metrics(state)
    assert m["interval_coverage"] == pytest.approx(0.5) and m["coverage_0.9"] == pytest.approx(0.75)
    with pytest.raises(DataError, match="needs 4 model outputs"):
        task.eval_step(lambda z: torch.zeros(4, 2), x, y)
    with pytest.raises(Exception, match="quantiles in"):
        create_task("forecasting", quantiles=[1.5])


def test_anomaly_metrics_match_sklearn() -> None:
    from sklearn.metrics import f1_score, roc_auc_score

    rng = np.random.default_rng(0)
    task = create_task("anomaly", threshold=0.5)
    logits = torch.tensor(rng.normal(size=(50, 4)), dtype=torch.float32)
    y = torch.tensor(rng.random((50, 4)) < 0.3, dtype=torch.float32)

    def step(x: torch.Tensor, t: torch.Tensor):
        return task.eval_step(lambda _: x, x, t)

    m = task.evaluate(step, [(logits[:25], y[:25]), (logits[25:], y[25:])], torch.device("cpu"))
    s = torch.sigmoid(logits[:, -1]).numpy()
    assert m["f1"] == pytest.approx(f1_score(y[:, -1].numpy(), s >= 0.5))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y[:, -1].numpy(), s))
    state = task.metric_state(torch.device("cpu"))
    task.update_metrics(state, step(logits, y))
    assert task.compute_metrics(state)["f1"] == pytest.approx(m["f1"])


def test_spectral_residual_against_numpy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 32)) + 5
    ours = spectral_residual(torch.tensor(x), q=3, extend=0).numpy()
    f = np.fft.fft(x, axis=-1)
    la = np.log(np.abs(f))
    padded = np.concatenate([la[:, :1], la, la[:, -1:]], axis=1)
    avg = (padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]) / 3
    ref = np.abs(np.fft.ifft(np.exp(la - avg) * f / np.abs(f), axis=-1))
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)
    spike = np.sin(np.linspace(0, 12, 64))
    spike[40] += 4
    s = spectral_residual(torch.tensor(spike[None]))[0].numpy()
    assert int(np.argmax(s)) == 40  # the saliency map peaks at the spike


def test_spectral_residual_finds_spikes_at_the_last_step() -> None:
    """The online setting: each step scored by the window that ends at it (Ren et al. 2019, Sec. 3.2)."""
    from sklearn.metrics import roc_auc_score

    from cnnkit.data.sources.anomaly_csv import anomaly_windows
    from cnnkit.models.srcnn import sr_scores

    rng = np.random.default_rng(0)
    s = np.sin(np.arange(2000) / 5) + 0.1 * rng.normal(size=2000)
    labels = np.zeros(2000, dtype=np.float32)
    idx = rng.choice(np.arange(100, 2000), 20, replace=False)
    s[idx] += rng.choice([-2.0, 2.0], 20)
    labels[idx] = 1
    x, y = anomaly_windows(s, labels, 64)
    assert roc_auc_score(y[:, -1], sr_scores(torch.tensor(x))[:, -1].numpy()) > 0.95
