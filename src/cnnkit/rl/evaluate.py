"""Evaluation episodes of a Q-network: epsilon-greedy with a small epsilon (Nature: 0.05), fresh seeded
environments, so each evaluation is reproducible and needs no saved state."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .dqn import epsilon_greedy
from .envs import make_env

__all__ = ["evaluate_policy", "summarize_returns"]


def summarize_returns(returns: list[float]) -> dict[str, float]:
    """Mean, median, standard deviation, min and max of episode returns."""
    if not returns:
        return {}
    return {
        "mean": float(statistics.fmean(returns)),
        "median": float(statistics.median(returns)),
        "std": float(statistics.pstdev(returns)),
        "min": float(min(returns)),
        "max": float(max(returns)),
    }


@torch.no_grad()
def evaluate_policy(
    model: nn.Module | None, env_name: str, *, episodes: int, epsilon: float, seed: int, scale: float = 1.0,
    sticky_actions: float = 0.1, max_frames: int = 18_000, device: torch.device | str = "cpu",
    on_frame: Callable[[Any], None] | None = None,
) -> list[float]:
    """Returns of ``episodes`` episodes; ``model=None`` plays uniformly at random (the baseline).

    Args:
        on_frame: called with the environment after each step (and after reset): GIF frames.
    """
    env = make_env(env_name, sticky_actions=sticky_actions, training=False)
    env.seed(seed)
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training if model is not None else False
    if model is not None:
        model.eval()
    returns: list[float] = []
    for _ in range(episodes):
        obs, total = env.reset(), 0.0
        if on_frame is not None:
            on_frame(env)
        for _ in range(max_frames):
            if model is None:
                q = torch.zeros(env.num_actions)
                action = epsilon_greedy(q, 1.0, gen)
            else:
                x = torch.from_numpy(np.asarray(obs)).to(device).float().unsqueeze(0) * scale
                action = epsilon_greedy(model(x)[0].cpu(), epsilon, gen)
            obs, reward, terminal, _ = env.step(action)
            total += reward
            if on_frame is not None:
                on_frame(env)
            if terminal:
                break
        returns.append(total)
    if model is not None and was_training:
        model.train()
    return returns
