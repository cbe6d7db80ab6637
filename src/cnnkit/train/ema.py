"""Exponential moving average of model weights (Polyak & Juditsky 1992; as in tf.train.ExponentialMovingAverage).

``ema <- d * ema + (1 - d) * w`` after every ``every_steps`` optimizer steps, over all floating-point
parameters and buffers (BatchNorm running statistics included); integer buffers are copied.

Deviations:
    The decay is warmed up as ``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates (TensorFlow's
    ``num_updates`` rule): without it the average of a short run is dominated by the random initial weights.
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

    def __init__(self, model: nn.Module, *, decay: float = 0.999, every_steps: int = 1) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"Expected 0 < decay < 1. Received: decay={decay}")
        if every_steps < 1:
            raise ValueError(f"Expected every_steps >= 1. Received: every_steps={every_steps}")
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
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        ema_f, src_f, ema_i, src_i = self._pairs
        if ema_f:
            torch._foreach_lerp_(ema_f, src_f, 1.0 - d)
        for e, s in zip(ema_i, src_i):
            e.copy_(s)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor], *, updates: int, steps: int) -> None:
        self.module.load_state_dict(state)
        self.updates = updates
        self._steps = steps
