"""``task: forecasting``: the next ``horizon`` values of a series from a window of its past.

Inputs are windows ``x`` ``(B, C, context)`` in the series' own units (channel 0 is the target); targets
``y`` ``(B, horizon)``. Each window is scaled by its own mean and standard deviation per channel before the
model sees it, and the forecast scaled back (instance normalization, as RevIN, Kim et al. 2022, without
its learned affine), so one model serves a series whose level drifts (the airline passengers triple over
12 years). The model outputs ``horizon`` values (a point forecast) or ``horizon x len(quantiles)``
(quantile forecasts, quantile-major: all horizons of the first quantile, then the next).

Loss: squared error (point), or the pinball loss of each quantile (Koenker & Bassett 1978; the quantile
forecasts of Wen et al. 2017, MQ-CNN), both on the window's scale so every window weighs alike.
Metrics, in the series' units, over every forecast point: MAE, RMSE, sMAPE (Makridakis 1993, in %), MASE
(Hyndman & Koehler 2006, Eq. 9: MAE over the in-window seasonal-naive MAE of the context, averaged over
windows) and, for quantiles, the coverage of each (the fraction of targets at or below it; a calibrated
``q`` covers ``q``) and of the central interval. Test windows start at every step of the held-out end of
the series (rolling-origin evaluation with a fixed model, Tashman 2000).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..errors import DataError
from .base import EvalStep, Forward, StepOutput, Task, register_task

__all__ = ["Forecasting", "conformal_offsets", "forecast_errors", "pinball_loss"]

_EPS = 1e-8


def pinball_loss(pred: Tensor, y: Tensor, quantiles: Tensor) -> Tensor:
    """Mean pinball loss of quantile forecasts ``pred`` ``(B, Q, H)`` for targets ``y`` ``(B, H)``:
    ``max(q (y - p), (q - 1)(y - p))``.

    Example:
        >>> round(pinball_loss(torch.tensor([[[1.0]]]), torch.tensor([[3.0]]), torch.tensor([0.9])).item(), 4)
        1.8
    """
    diff = y[:, None, :] - pred
    q = quantiles.to(pred)[None, :, None]
    return torch.maximum(q * diff, (q - 1) * diff).mean()


def conformal_offsets(scores: Tensor, quantiles: list[float]) -> Tensor:
    """Split-conformal offset of each quantile level from calibration ``scores`` ``(N, Q)`` = ``y - q_tau(x)``.

    The offset of level ``tau`` is the ``k``-th smallest of its ``N`` scores, ``k = ceil((N + 1) tau)``
    (Romano et al. 2019, Eq. 7 and Theorem 2, one tail at a time): for exchangeable scores
    ``tau <= P(y <= q_tau(x) + offset) < tau + 1 / (N + 1)``. With too few scores for a level
    (``k > N``) the largest score is used and the lower bound no longer holds. This is the order statistic
    of ``cnnkit.evaluate.conformal_quantile`` with ``alpha = 1 - tau``, written again here because tasks
    sit below ``evaluate`` in the package order.

    Example:
        >>> conformal_offsets(torch.arange(1.0, 10.0)[:, None], [0.5]).tolist()  # k = ceil(10 * 0.5) = 5
        [5.0]
    """
    if scores.ndim != 2 or scores.shape[1] != len(quantiles):
        raise ValueError(f"Expected scores of shape (N, {len(quantiles)}). Received: {tuple(scores.shape)}")
    n = scores.shape[0]
    if n == 0:
        raise DataError("conformal calibration needs at least one validation window; set data.val_fraction > 0")
    s = scores.double().sort(dim=0).values
    k = [min(max(math.ceil((n + 1) * q), 1), n) - 1 for q in quantiles]
    return torch.stack([s[k[i], i] for i in range(len(quantiles))])


def forecast_errors(point: Tensor, y: Tensor, context: Tensor, season: int = 1) -> dict[str, Tensor]:
    """Per-window sums of errors of ``point`` ``(B, H)`` against ``y``: ``abs``, ``sq``, ``smape`` (sums over
    the horizon) and ``mase`` (one value per window), with ``context`` ``(B, L)`` the target's history."""
    err = point - y
    denom = (point.abs() + y.abs()).clamp_min(_EPS)
    if context.shape[1] > season:
        scale = (context[:, season:] - context[:, :-season]).abs().mean(dim=1)
    else:
        scale = torch.ones(len(context), dtype=point.dtype, device=point.device)
    return {
        "abs": err.abs().sum(1), "sq": (err**2).sum(1), "smape": (200.0 * err.abs() / denom).sum(1),
        "mase": err.abs().mean(1) / scale.clamp_min(_EPS),
    }


@register_task
class Forecasting(Task):
    """Point or quantile forecasts of the next ``horizon`` steps.

    Args:
        horizon: steps forecast (must equal the data's ``horizon``).
        quantiles: quantile levels in (0, 1) for quantile forecasts (e.g. ``[0.1, 0.5, 0.9]``; the model
            must output ``horizon * len(quantiles)`` values: set the data's ``quantiles`` alike); None or
            empty: a point forecast. The point forecast of quantile models is the median (or the middle
            quantile).
        season: the seasonal period of MASE's scale (12 for monthly data with a yearly cycle; 1: naive).
        conformal: after training, calibrate the quantiles on the validation split (CQR, see the module
            docstring) when the run has one; only for quantile forecasts.
        offsets: one conformal offset per quantile, in units of the window's std (what a run saves after
            calibrating; may be set by hand); None: uncalibrated.

    Example:
        >>> task = Forecasting(horizon=2)
        >>> x = torch.tensor([[[1.0, 2.0, 3.0]]])
        >>> out = task.eval_step(lambda z: torch.zeros(1, 2), x, torch.tensor([[2.0, 2.0]]))
        >>> out.outputs[:, :2].tolist()  # zeros on the window's scale: its mean
        [[2.0, 2.0]]
    """

    name: ClassVar[str] = "forecasting"
    target: ClassVar[str] = "the next horizon values, float of shape (N, horizon)"
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "mae", "rmse", "smape", "mase")
    monitor: ClassVar[tuple[str, str]] = ("rmse", "min")

    fitted_key: ClassVar[str] = "calibration"
    fitted_note: ClassVar[str] = "conformalized quantile regression (Romano et al. 2019) on the validation split"

    def __init__(self, *, horizon: int = 12, quantiles: list[float] | None = None, season: int = 1,
                 conformal: bool = True, offsets: list[float] | None = None) -> None:
        if horizon < 1:
            raise ValueError(f"Expected horizon >= 1. Received: horizon={horizon}")
        if season < 1:
            raise ValueError(f"Expected season >= 1. Received: season={season}")
        qs = sorted(float(q) for q in (quantiles or []))
        if any(not 0 < q < 1 for q in qs) or len(set(qs)) != len(qs):
            raise ValueError(f"Expected distinct quantiles in (0, 1). Received: quantiles={quantiles}")
        self.horizon, self.quantiles, self.season = int(horizon), qs, int(season)
        cover = tuple(f"coverage_{q:g}" for q in qs) + (("interval_coverage",) if len(qs) >= 2 else ())
        self.metric_names = Forecasting.metric_names + cover  # type: ignore[misc]
        self._q = torch.tensor(qs, dtype=torch.float32)
        if offsets is not None and (len(offsets) != len(qs) or not all(math.isfinite(float(v)) for v in offsets)):
            raise ValueError(f"Expected {len(qs)} finite offsets, one per quantile. Received: offsets={offsets}")
        self.conformal = bool(conformal)
        self.offsets = None if offsets is None else torch.tensor([float(v) for v in offsets], dtype=torch.float32)

    @property
    def num_outputs(self) -> int:
        return self.horizon * max(1, len(self.quantiles))

    def _split(self, out: Tensor) -> Tensor:
        """Model output -> ``(B, Q, H)`` (Q = 1 for a point forecast)."""
        if out.ndim != 2 or out.shape[1] != self.num_outputs:
            raise DataError(
                f"task forecasting (horizon {self.horizon}, {max(1, len(self.quantiles))} quantile(s)) needs "
                f"{self.num_outputs} model outputs; the model gives {tuple(out.shape[1:])}: set data.horizon and "
                "data.quantiles like the task's"
            )
        return out.float().view(len(out), max(1, len(self.quantiles)), self.horizon)

    def forecast(self, forward: Forward, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(forecasts (B, Q, H) in the series' units, mean (B,), std (B,))`` of the target channel."""
        mean = x.mean(dim=-1, keepdim=True)
        std = x.std(dim=-1, unbiased=False, keepdim=True).clamp_min(1e-5)
        z = self._split(forward((x - mean) / std))
        if self.offsets is not None and not self._fitting:
            # Offsets are in the window's scale; sorting restores the order of crossed quantiles.
            z = (z + self.offsets.to(z)[None, :, None]).sort(dim=1).values
        return z * std[:, :1] + mean[:, :1], mean[:, 0, 0], std[:, 0, 0]

    def point(self, q: Tensor) -> Tensor:
        if not self.quantiles:
            return q[:, 0]
        i = min(range(len(self.quantiles)), key=lambda j: abs(self.quantiles[j] - 0.5))
        return q[:, i]

    def train_step(self, forward: Forward, x: Tensor, y: Tensor) -> StepOutput:
        self.check_target(y)
        q, _, std = self.forecast(forward, x)
        scale = std[:, None]
        if self.quantiles:
            loss = pinball_loss(q / scale[:, None], y / scale, self._q.to(q.device))
        else:
            loss = (((q[:, 0] - y) / scale) ** 2).mean()
        # outputs: all quantiles, then the context's target channel, so the metrics can scale MASE.
        return StepOutput(loss, torch.cat([q.flatten(1), x[:, 0].float()], dim=1), y)

    def metric_state(self, device: torch.device) -> Tensor:
        # loss sum, windows, points, abs, sq, smape, mase, one below-count per quantile, inside-interval count
        return torch.zeros(7 + len(self.quantiles) + 1, dtype=torch.float64, device=device)

    def update_metrics(self, state: Tensor, step: StepOutput) -> None:
        b = step.target.shape[0]
        nq = max(1, len(self.quantiles))
        q = step.outputs[:, : nq * self.horizon].detach().view(b, nq, self.horizon)
        context = step.outputs[:, nq * self.horizon :].detach()
        y = step.target.detach().float()
        e = forecast_errors(self.point(q), y, context, self.season)
        state[0] += step.loss.detach().double() * b
        state[1] += b
        state[2] += y.numel()
        state[3] += e["abs"].sum()
        state[4] += e["sq"].sum()
        state[5] += e["smape"].sum()
        state[6] += e["mase"].sum()
        for i in range(len(self.quantiles)):
            state[7 + i] += (y <= q[:, i]).sum()
        if len(self.quantiles) >= 2:
            state[7 + len(self.quantiles)] += ((y >= q[:, 0]) & (y <= q[:, -1])).sum()

    # ------------------------------------------------------------------ conformal calibration

    def fits_validation(self) -> bool:
        return self.conformal and bool(self.quantiles)

    def evaluate(self, step: EvalStep, batches: Iterable[tuple[Tensor, Tensor]], device: torch.device) -> dict[str, Any]:
        if not self._fitting:
            return super().evaluate(step, batches, device)
        nq, scores = len(self.quantiles), []
        for x, y in batches:
            out = step(x, y)  # uncalibrated: forecast() skips the offsets while fitting
            b = out.target.shape[0]
            q = out.outputs[:, : nq * self.horizon].detach().double().view(b, nq, self.horizon)
            context = out.outputs[:, nq * self.horizon :].detach().double()
            std = context.std(dim=1, unbiased=False).clamp_min(1e-5)[:, None, None]
            # (y - q) / std: scores on the window's scale, so windows of a growing series weigh alike.
            scores.append(((out.target.double()[:, None, :] - q) / std).permute(0, 2, 1).reshape(-1, nq))
        offsets = conformal_offsets(torch.cat(scores) if scores else torch.zeros(0, nq), self.quantiles)
        return {"fitted": [float(v) for v in offsets], "count": int(sum(len(v) for v in scores))}

    def set_fitted(self, fitted: Any) -> None:
        self.offsets = None if fitted is None else torch.tensor([float(v) for v in fitted], dtype=torch.float32)

    def fitted_kwargs(self) -> dict[str, Any]:
        return {} if self.offsets is None else {"offsets": [round(float(v), 6) for v in self.offsets]}

    def compute_metrics(self, state: Tensor) -> dict[str, float]:
        v = state.tolist()
        windows, points = v[1], v[2]
        if windows == 0:
            return {**{k: float("nan") for k in self.metric_names}, "count": 0}
        out = {"loss": v[0] / windows, "mae": v[3] / points, "rmse": (v[4] / points) ** 0.5, "smape": v[5] / points,
               "mase": v[6] / windows, "count": int(windows)}
        for i, q in enumerate(self.quantiles):
            out[f"coverage_{q:g}"] = v[7 + i] / points
        if len(self.quantiles) >= 2:
            out["interval_coverage"] = v[7 + len(self.quantiles)] / points
        return out

    def check_target(self, y: Tensor) -> None:
        if y.ndim != 2 or not y.is_floating_point() or y.shape[1] != self.horizon:
            raise DataError(f"task forecasting (horizon {self.horizon}) reads {self.target}; received {y.dtype} of shape {tuple(y.shape)}")

    def present(self, outputs: Tensor, *, class_names: list[str] | None = None, top_k: int = 3) -> list[dict[str, Any]]:
        """Per window: ``forecast`` (the point forecast) and, for quantile models, ``quantiles``."""
        nq = max(1, len(self.quantiles))
        q = outputs[:, : nq * self.horizon].detach().double().cpu().view(len(outputs), nq, self.horizon)
        rows = []
        for row in q:
            item: dict[str, Any] = {"forecast": [float(v) for v in self.point(row[None])[0]]}
            if self.quantiles:
                item["quantiles"] = {f"{lv:g}": [float(v) for v in row[i]] for i, lv in enumerate(self.quantiles)}
            rows.append(item)
        return rows

    def headline(self, metrics: Any) -> str | None:
        r, m = metrics.get("test_rmse"), metrics.get("test_mase")
        if not isinstance(r, (int, float)):
            return None
        return f"test RMSE: {r:.4g}" + (f", MASE: {m:.3f}" if isinstance(m, (int, float)) else "")

    def __repr__(self) -> str:
        offsets = None if self.offsets is None else [round(float(v), 4) for v in self.offsets]
        return f"Forecasting(horizon={self.horizon}, quantiles={self.quantiles}, season={self.season}, offsets={offsets})"
