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


def test_dft_matrix_product_against_torch_fft() -> None:
    """The real-valued DFT that lets SR-CNN export to ONNX equals torch.fft forwards and backwards."""
    from cnnkit.models.srcnn import _dft

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 69, generator=g, dtype=torch.float64)
    y = torch.randn(4, 69, generator=g, dtype=torch.float64)
    f = torch.fft.fft(x)
    re, im = _dft(x)
    torch.testing.assert_close(re, f.real, rtol=0, atol=1e-10)
    torch.testing.assert_close(im, f.imag, rtol=0, atol=1e-10)
    z = torch.fft.fft(torch.complex(x, y))
    re, im = _dft(x, y)
    torch.testing.assert_close(torch.complex(re, im), z, rtol=0, atol=1e-10)
    back = torch.fft.ifft(torch.complex(x, y))
    re, im = _dft(x, y, inverse=True)
    torch.testing.assert_close(torch.complex(re, im), back, rtol=0, atol=1e-12)


def test_spectral_residual_is_the_same_above_the_matrix_length(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long series take torch.fft, short windows the DFT matrix: one map either way."""
    import cnnkit.models.srcnn as srcnn_module

    x = torch.randn(2, 200, generator=torch.Generator().manual_seed(1)) + 3
    short = spectral_residual(x)
    monkeypatch.setattr(srcnn_module, "_DFT_MAX", 16)
    torch.testing.assert_close(spectral_residual(x), short, rtol=1e-6, atol=1e-6)


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


# ---------------------------------------------------------------- conformal calibration of quantile forecasts

_LEVELS = [0.1, 0.5, 0.9]


def _iid_windows(n: int, gen: torch.Generator, horizon: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows whose context is one fixed ramp (mean 2, std ~1.15 after normalization) and whose targets
    are i.i.d. N(5, 2^2): the true quantiles of every target are 5 + 2 z_tau, known exactly."""
    x = torch.linspace(0.0, 4.0, 8).expand(n, 1, 8).clone()
    y = 5.0 + 2.0 * torch.randn(n, horizon, generator=gen)
    return x, y


def _quantile_model(width: float, horizon: int = 3):
    """A forward that outputs ``5 + width * 2 z_tau`` in the series' units (width 1: the true quantiles)."""
    z = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(_LEVELS))
    ramp = torch.linspace(0.0, 4.0, 8)
    mean, std = ramp.mean(), ramp.std(unbiased=False)
    per_q = ((5.0 + width * 2.0 * z) - mean) / std  # on the window's scale, what the model must emit

    def forward(v: torch.Tensor) -> torch.Tensor:
        return per_q.repeat_interleave(horizon).expand(len(v), -1).clone()

    return forward


def _coverage(task, forward, x, y) -> dict[str, float]:
    sums = task.metric_state(torch.device("cpu"))
    for i in range(0, len(x), 500):
        task.update_metrics(sums, task.eval_step(forward, x[i : i + 500], y[i : i + 500]))
    return task.compute_metrics(sums)


def test_conformal_offsets_order_statistic() -> None:
    from cnnkit.tasks.forecasting import conformal_offsets

    s = torch.tensor([[3.0, 3.0], [1.0, 1.0], [2.0, 2.0], [4.0, 4.0]])
    # n = 4: tau 0.2 -> k = ceil(1.0) = 1 (the smallest); tau 0.8 -> k = ceil(4.0) = 4 (the largest)
    assert conformal_offsets(s, [0.2, 0.8]).tolist() == [1.0, 4.0]
    assert conformal_offsets(s[:, :1], [0.99]).tolist() == [4.0]  # k = 5 > n: the largest score
    with pytest.raises(ValueError, match=r"Expected scores of shape \(N, 2\)"):
        conformal_offsets(s[:, :1], [0.2, 0.8])
    with pytest.raises(DataError, match="val_fraction"):
        conformal_offsets(torch.zeros(0, 1), [0.5])


@pytest.mark.parametrize("width", [0.4, 1.0, 2.5])
def test_conformal_calibration_reaches_nominal_coverage(width: float) -> None:
    """Seeded statistical test: quantiles too narrow (0.4), right (1.0) or too wide (2.5) are moved by
    offsets fitted on 1,000 calibration windows (3,000 scores); on 4,000 fresh windows (12,000 points) each
    level then covers within 4 binomial standard errors (plus the calibration's own sampling error) of its
    nominal value, while the uncalibrated narrow and wide ones are far off."""
    gen = torch.Generator().manual_seed(11)
    task = create_task("forecasting", horizon=3, quantiles=_LEVELS)
    forward = _quantile_model(width)
    xc, yc = _iid_windows(1000, gen)
    xt, yt = _iid_windows(4000, gen)
    before = _coverage(task, forward, xt, yt)

    def step(x, y):
        return task.eval_step(forward, x, y)

    with task.fitting():
        fitted = task.evaluate(step, [(xc, yc)], torch.device("cpu"))
    assert fitted["count"] == 3000
    task.set_fitted(fitted["fitted"])
    after = _coverage(task, forward, xt, yt)
    for tau in _LEVELS:
        # binomial se of the test coverage plus that of the calibration quantile (n = 3000)
        tol = 4 * ((tau * (1 - tau) / 12000) ** 0.5 + (tau * (1 - tau) / 3000) ** 0.5)
        assert after[f"coverage_{tau:g}"] == pytest.approx(tau, abs=tol)
    assert after["interval_coverage"] == pytest.approx(0.8, abs=0.04)
    if width == 1.0:  # the true quantiles need (almost) no offset: |offset| within sampling error
        assert max(abs(v) for v in fitted["fitted"]) < 0.1
    else:
        assert abs(before["interval_coverage"] - 0.8) > 0.15  # the uncalibrated band is visibly wrong
    # the fitted offsets travel with the task, as model.json stores them
    rebuilt = create_task("forecasting", horizon=3, quantiles=_LEVELS, **task.fitted_kwargs())
    assert _coverage(rebuilt, forward, xt, yt)["interval_coverage"] == pytest.approx(after["interval_coverage"])


def test_offsets_bad_values() -> None:
    from cnnkit.errors import ConfigError

    with pytest.raises(ConfigError, match="Expected 3 finite offsets"):
        create_task("forecasting", horizon=2, quantiles=_LEVELS, offsets=[0.1])
    assert not create_task("forecasting", horizon=2).fits_validation()  # point forecasts: nothing to calibrate
    assert not create_task("forecasting", horizon=2, quantiles=_LEVELS, conformal=False).fits_validation()


# ---------------------------------------------------------------- anomaly: point adjustment and threshold

def test_point_adjust_against_the_authors_loop() -> None:
    """Oracle: get_range_proba of microsoft/anomalydetector (srcnn/competition_metric.py), re-typed as a
    plain loop over the label runs, on random predictions and segments."""
    from cnnkit.tasks.anomaly import point_adjust

    def reference(predict, label, delay):
        predict, label = list(predict), list(label)
        new, pos, is_anom = list(predict), 0, label[0] == 1
        splits = [i for i in range(1, len(label)) if label[i] != label[i - 1]] + [len(label)]
        for sp in splits:
            if is_anom:
                hit = 1 in predict[pos : min(pos + delay + 1, sp)]
                new[pos:sp] = [1 if hit else 0] * (sp - pos)
            is_anom, pos = not is_anom, sp
        return new

    rng = np.random.default_rng(3)
    for _ in range(50):
        y = (rng.random(80) < 0.15).astype(int)
        y[rng.integers(0, 70) : rng.integers(70, 80)] = 1
        p = (rng.random(80) < 0.2).astype(int)
        for delay in (0, 3, 7):
            assert point_adjust(p, y, delay).tolist() == reference(p, y, delay)


def test_best_adjusted_f1_matches_brute_force() -> None:
    from cnnkit.tasks.anomaly import _prf, best_adjusted_f1, point_adjust

    rng = np.random.default_rng(4)
    y = np.zeros(400, dtype=int)
    for a in (50, 120, 300):
        y[a : a + rng.integers(1, 12)] = 1
    s = rng.random(400) + 0.8 * y * (rng.random(400) < 0.5)
    best, t = best_adjusted_f1(s, y, delay=3)
    brute = max(_prf(point_adjust(s >= c, y, 3).astype(bool), y.astype(bool))[2] for c in np.unique(s))
    assert best == pytest.approx(brute)
    assert _prf(point_adjust(s >= t, y, 3).astype(bool), y.astype(bool))[2] == pytest.approx(best)


def test_anomaly_threshold_fitted_at_the_false_alarm_rate() -> None:
    """Seeded statistical test: a threshold fitted on 5,000 normal validation scores at rate 0.01 flags
    close to 1% of 50,000 fresh normal steps (4 binomial s.e. plus the calibration's own error)."""
    gen = torch.Generator().manual_seed(5)
    task = create_task("anomaly", false_alarm_rate=0.01)

    def batches(n):
        logits = torch.randn(n, 4, generator=gen)
        return [(logits[i : i + 1000], torch.zeros(len(logits[i : i + 1000]), 4)) for i in range(0, n, 1000)]

    def step(x, y):
        return task.eval_step(lambda v: v, x, y)

    assert task.fits_validation()
    with task.fitting():
        fitted = task.evaluate(step, batches(5000), torch.device("cpu"))
    assert fitted["count"] == 5000
    task.set_fitted(fitted["fitted"])
    assert task.fitted_kwargs() == {"threshold": fitted["fitted"]}
    flagged = np.mean([float((step(x, y).outputs >= task.threshold).float().mean()) for x, y in batches(50000)])
    tol = 4 * ((0.01 * 0.99 / 50000) ** 0.5 + (0.01 * 0.99 / 5000) ** 0.5)
    assert flagged == pytest.approx(0.01, abs=tol)
    assert not create_task("anomaly", false_alarm_rate=None).fits_validation()
    with pytest.raises(DataError, match="no normal steps"):
        with task.fitting():
            task.evaluate(step, [(torch.zeros(3, 4), torch.ones(3, 4))], torch.device("cpu"))
