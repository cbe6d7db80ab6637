"""The pieces of deep Q-learning (Mnih et al. 2015, Algorithm 1), as pure functions.

- :func:`epsilon_at`: epsilon annealed linearly from ``start`` to ``end`` over ``frames`` frames, then fixed
  (Nature, Methods "Training details": 1 -> 0.1 over the first million frames);
- :func:`td_target`: ``y = r`` at a terminal transition, else ``r + gamma * max_a' Q_target(s', a')``
  (Algorithm 1), or with ``double`` the Double DQN target ``r + gamma * Q_target(s', argmax_a' Q(s', a'))``
  (van Hasselt et al. 2016, Eq. 4: the online network chooses, the target network evaluates);
- :func:`q_loss`: the Huber loss of ``y - Q(s, a)`` (the paper's "error clipping" to [-1, 1] of the
  derivative, Methods) or the squared error;
- :func:`epsilon_greedy`: a uniformly random action with probability epsilon, else the greedy one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["epsilon_at", "epsilon_greedy", "q_loss", "td_target", "dqn_update"]


def epsilon_at(frame: int, *, start: float, end: float, frames: int) -> float:
    """Linear annealing from ``start`` (frame 0) to ``end`` (frame ``frames``), constant afterwards."""
    if frame >= frames:
        return float(end)
    return float(start + (end - start) * frame / frames)


def td_target(
    reward: Tensor, terminal: Tensor, next_q_target: Tensor, *, gamma: float, next_q_online: Tensor | None = None
) -> Tensor:
    """The regression target y of one minibatch.

    Args:
        reward: ``(B,)`` (clipped) rewards.
        terminal: ``(B,)`` bool: s' ends the episode (or, training on Atari, a life).
        next_q_target: ``(B, A)`` Q-values of s' from the target network.
        gamma: discount.
        next_q_online: ``(B, A)`` Q-values of s' from the online network: given, the Double DQN target.
    """
    if next_q_online is None:
        bootstrap = next_q_target.max(dim=1).values
    else:
        bootstrap = next_q_target.gather(1, next_q_online.argmax(dim=1, keepdim=True)).squeeze(1)
    return reward + gamma * (~terminal).to(reward.dtype) * bootstrap


def q_loss(q: Tensor, action: Tensor, target: Tensor, *, kind: str = "huber") -> Tensor:
    """Mean loss of ``Q(s, a)`` (``q``: ``(B, A)``, ``action``: ``(B,)``) against ``target`` ``(B,)``."""
    chosen = q.gather(1, action.unsqueeze(1)).squeeze(1)
    if kind == "huber":
        return F.smooth_l1_loss(chosen, target, beta=1.0)  # quadratic inside [-1, 1], linear outside
    return F.mse_loss(chosen, target)


def epsilon_greedy(q: Tensor, epsilon: float, generator: torch.Generator) -> int:
    """One action from ``q`` ``(A,)``: uniform with probability ``epsilon``, else argmax (two draws always,
    so the random stream does not depend on the network's output)."""
    explore = torch.rand((), generator=generator).item() < epsilon
    random_action = int(torch.randint(0, q.shape[-1], (), generator=generator).item())
    return random_action if explore else int(q.argmax().item())


def dqn_update(
    online: nn.Module, target: nn.Module, optimizer: torch.optim.Optimizer,
    batch: tuple[Tensor, Tensor, Tensor, Tensor, Tensor], *, gamma: float, double: bool, loss: str, scale: float,
) -> Tensor:
    """One gradient step on a minibatch ``(s, a, r, s', terminal)`` of uint8 observations; returns the loss."""
    obs, action, reward, next_obs, terminal = batch
    x, x_next = obs.float() * scale, next_obs.float() * scale
    with torch.no_grad():
        next_q_target = target(x_next)
        next_q_online = online(x_next) if double else None
        y = td_target(reward, terminal, next_q_target, gamma=gamma, next_q_online=next_q_online)
    value = q_loss(online(x), action, y, kind=loss)
    optimizer.zero_grad(set_to_none=True)
    value.backward()
    optimizer.step()
    return value.detach()
