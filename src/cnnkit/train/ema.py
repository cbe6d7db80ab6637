"""Exponential moving average of model weights (Polyak & Juditsky 1992; as in tf.train.ExponentialMovingAverage).

``ema <- d * ema + (1 - d) * w`` after every ``every_steps`` optimizer steps, over all floating-point
parameters and buffers (BatchNorm running statistics included); integer buffers are copied.

Deviations:
    The decay is warmed up as ``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates (TensorFlow's
    ``num_updates`` rule): without it the average of a short run is dominated by the random initial weights.

Two options come from airbench (Jordan 2024, ``LookaheadState`` in airbench94.py), which trains this way:

- ``ramp="cubic"``: ``d = decay * (s / S)^3`` at optimizer step ``s`` of ``S``: no averaging early, when the
  weights move fast, and most of it at the end (airbench: ``decay = 0.95^5`` every 5 steps).
- ``lookahead=True``: after each update the training weights are reset to the average, as in Lookahead
  (Zhang et al. 2019, Alg. 1, with the slow weights an EMA of the fast ones rather than a fixed-step
  interpolation); the run then ends on the averaged weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["ModelEMA"]


class ModelEMA:
    """A shadow copy of a model whose weights track an exponential moving average.

    Args:
        model: the (unwrapped) model being trained.
        decay: the target decay ``d`` in (0, 1).
        every_steps: update once per this many optimizer steps.

    Example:
        >>> net = nn.Linear(2, 2)
        >>> ema = ModelEMA(net, decay=0.9)
        >>> ema.update(net)
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        decay: float = 0.999,
        every_steps: int = 1,
        ramp: str = "num_updates",
        total_steps: int | None = None,
        lookahead: bool = False,
    ) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"Expected 0 < decay < 1. Received: decay={decay}")
        if every_steps < 1:
            raise ValueError(f"Expected every_steps >= 1. Received: every_steps={every_steps}")
        if ramp not in ("num_updates", "cubic"):
            raise ValueError(f"Expected ramp in ('num_updates', 'cubic'). Received: ramp={ramp!r}")
        if ramp == "cubic" and (total_steps is None or total_steps < 1):
            raise ValueError(f"Expected total_steps >= 1 with ramp='cubic'. Received: total_steps={total_steps}")
        self.ramp = ramp
        self.total_steps = total_steps
        self.lookahead = lookahead
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.every_steps = every_steps
        self.updates = 0
        self._steps = 0
        self._pairs: tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]] | None = None

    def _bind(self, model: nn.Module) -> None:
        ema_sd = self.module.state_dict(keep_vars=True)
        src_sd = model.state_dict(keep_vars=True)
        ef: list[torch.Tensor] = []
        sf: list[torch.Tensor] = []
        ei: list[torch.Tensor] = []
        si: list[torch.Tensor] = []
        for key, e in ema_sd.items():
            s = src_sd[key]
            (ef if e.is_floating_point() else ei).append(e.data if isinstance(e, nn.Parameter) else e)
            (sf if e.is_floating_point() else si).append(s.data if isinstance(s, nn.Parameter) else s)
        self._pairs = (ef, sf, ei, si)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Count one optimizer step; every ``every_steps`` steps, move the average towards ``model``."""
        self._steps += 1
        if self._steps % self.every_steps:
            return
        if self._pairs is None:
            self._bind(model)
        assert self._pairs is not None
        self.updates += 1
        if self.ramp == "cubic":
            assert self.total_steps is not None
            d = self.decay * min(1.0, self._steps / self.total_steps) ** 3
        else:
            d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        ema_f, src_f, ema_i, src_i = self._pairs
        if ema_f:
            torch._foreach_lerp_(ema_f, src_f, 1.0 - d)
        for e, s in zip(ema_i, src_i):
            e.copy_(s)
        if self.lookahead and src_f:
            torch._foreach_copy_(src_f, ema_f)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor], *, updates: int, steps: int) -> None:
        self.module.load_state_dict(state)
        self.updates = updates
        self._steps = steps
