"""Muon: momentum whose update is orthogonalized, for convolution filters (Jordan et al. 2024).

K. Jordan, Y. Jin, V. Boza, J. You, F. Cesista, L. Newhouse, J. Bernstein, "Muon: An optimizer for hidden
layers in neural networks" (2024, kellerjordan.github.io/posts/muon), in the form the CIFAR-10 speed record
``airbench94_muon.py`` uses for conv filters (8 epochs where airbench's SGD needs 10):

    B <- mu * B + g                                  (momentum buffer)
    G <- g + mu * B  (Nesterov)  or  B
    W <- W * sqrt(d_out) / ||W||_F                   (weight normalization; BatchNorm follows every filter)
    W <- W - lr * NS5(G reshaped to (d_out, -1))     (orthogonalized update)

``NS5`` is ``ns_steps`` steps (3, as in airbench94_muon.py; Jordan's reference for transformers uses 5)
of the quintic Newton-Schulz iteration ``X <- a X + (b A + c A^2) X`` with
``A = X X^T``, ``(a, b, c) = (3.4445, -4.7750, 2.0315)``, started from ``G / ||G||_F``: it maps G's singular
values close to 1 (into about [0.7, 1.2]) without an SVD. As in the reference, it runs in bfloat16.

Parameter groups with ``muon=False`` (biases, norm parameters, the linear head) take torch's SGD step
(momentum, Nesterov, coupled weight decay), so one optimizer holds the whole model, as the engine's
schedules and checkpoints expect.

Written here rather than taken from ``torch.optim.Muon`` because that one (torch >= 2.9 only; cnnkit supports
2.4) accepts only 2-D parameters, and has neither the weight normalization nor a step for the other groups.
Its Newton-Schulz step is the test oracle for ours.

Deviations: none in the update; the learning-rate schedule is the engine's (airbench decays linearly to 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["Muon", "newton_schulz5"]

_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz5(
    g: torch.Tensor, steps: int = 5, eps: float = 1e-7, *, dtype: torch.dtype = torch.bfloat16
) -> torch.Tensor:
    """An approximate orthogonalization ``U V^T`` of the matrix ``g = U S V^T`` (see the module docstring),
    computed in ``dtype`` (the reference's bfloat16) and returned in ``g``'s dtype."""
    if g.ndim != 2:
        raise ValueError(f"Expected a matrix. Received: shape {tuple(g.shape)}")
    a, b, c = _NS_COEFFICIENTS
    x = g.to(dtype)
    x = x / (x.norm() + eps)
    tall = g.size(0) > g.size(1)
    if tall:  # iterate on the wide orientation: A = X X^T is then the smaller Gram matrix
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).to(g.dtype)


class Muon(torch.optim.Optimizer):
    """Muon for the groups with ``muon=True`` (the default), SGD for the others.

    Args:
        params: parameters or parameter groups; a group may set ``muon``, ``lr``, ``momentum``,
            ``nesterov``, ``weight_decay`` (SGD groups only) and ``normalize_weights`` (Muon groups).
        lr: step size.
        momentum: momentum ``mu`` (airbench: 0.6 for filters, 0.85 for the SGD groups).
        nesterov: Nesterov momentum.
        weight_decay: coupled L2 decay of the SGD groups (Muon groups are weight-normalized instead).
        ns_steps: Newton-Schulz iterations (airbench94_muon: 3; each costs ~1.2 ms per step for the fast
            recipe's six filters on one CPU thread).
        normalize_weights: rescale each Muon parameter to Frobenius norm ``sqrt(d_out)`` before its step.

    Example:
        >>> conv = torch.nn.Conv2d(3, 8, 3)
        >>> opt = Muon([{"params": [conv.weight]}, {"params": [conv.bias], "muon": False}], lr=0.1)
        >>> conv(torch.randn(2, 3, 8, 8)).sum().backward()
        >>> opt.step()
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        *,
        lr: float = 0.24,
        momentum: float = 0.6,
        nesterov: bool = True,
        weight_decay: float = 0.0,
        ns_steps: int = 3,
        normalize_weights: bool = True,
    ) -> None:
        if lr <= 0:
            raise ValueError(f"Expected lr > 0. Received: lr={lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Expected 0 <= momentum < 1. Received: momentum={momentum}")
        defaults = dict(
            lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, ns_steps=ns_steps,
            normalize_weights=normalize_weights, muon=True,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["muon"]:
                for p in group["params"]:
                    if p.ndim < 2:
                        raise ValueError(
                            f"Expected Muon parameters with >= 2 dimensions (filters, matrices); put biases and "
                            f"norm parameters in a group with muon=False. Received: shape {tuple(p.shape)}"
                        )

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mu, nesterov = group["lr"], group["momentum"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if not group["muon"] and group["weight_decay"]:
                    g = g.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if mu:
                    if "momentum_buffer" not in state:
                        # the first buffer is the gradient (torch's SGD; airbench's zeros * mu + g is the same)
                        buf = state["momentum_buffer"] = g.clone()
                    else:
                        buf = state["momentum_buffer"]
                        buf.mul_(mu).add_(g)
                    g = g.add(buf, alpha=mu) if nesterov else buf
                if group["muon"]:
                    if group["normalize_weights"]:
                        p.mul_(len(p) ** 0.5 / p.norm().clamp_min(1e-12))
                    update = newton_schulz5(g.reshape(len(g), -1), steps=group["ns_steps"]).view_as(p)
                    p.add_(update, alpha=-lr)
                else:
                    p.add_(g, alpha=-lr)
        return loss
