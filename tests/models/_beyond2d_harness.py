"""Shared checks for the beyond-2-D model tests (forward/backward, determinism, features/head split)."""

from __future__ import annotations

import torch
from torch import nn


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_model(model: nn.Module, x: torch.Tensor, out_shape: tuple[int, ...]) -> None:
    """Forward/backward, finite gradients on every parameter, eval determinism, head(features) == forward."""
    model.train()
    y = model(x)
    assert tuple(y.shape) == out_shape
    y.float().square().mean().backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"no gradient for {name}"
            assert torch.isfinite(p.grad).all(), f"non-finite gradient for {name}"
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
        c = model.forward_head(model.forward_features(x))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c, rtol=0, atol=0)
    assert isinstance(model.input_shape, tuple)
