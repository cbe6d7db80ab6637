"""The DQN pieces against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from cnnkit.rl.dqn import epsilon_at, epsilon_greedy, q_loss, td_target

REWARD = torch.tensor([1.0, 0.0, 2.0])
TERMINAL = torch.tensor([False, True, False])
NEXT_TARGET = torch.tensor([[1.0, 3.0], [5.0, 2.0], [0.5, 0.2]])
NEXT_ONLINE = torch.tensor([[4.0, 1.0], [0.0, 9.0], [0.0, 1.0]])


def test_td_target_by_hand():
    # y = r + 0.9 * max_a' Q_target(s', a'), and y = r at a terminal transition.
    y = td_target(REWARD, TERMINAL, NEXT_TARGET, gamma=0.9)
    assert torch.allclose(y, torch.tensor([1 + 0.9 * 3, 0.0, 2 + 0.9 * 0.5]))


def test_double_dqn_target_by_hand():
    # The online network picks a' = argmax (0, 1, 1); the target network values it (1, -, 0.2).
    y = td_target(REWARD, TERMINAL, NEXT_TARGET, gamma=0.9, next_q_online=NEXT_ONLINE)
    assert torch.allclose(y, torch.tensor([1 + 0.9 * 1.0, 0.0, 2 + 0.9 * 0.2]))
    assert not torch.allclose(y, td_target(REWARD, TERMINAL, NEXT_TARGET, gamma=0.9))


def test_huber_loss_by_hand():
    q = torch.tensor([[0.0, 1.0], [3.0, 0.0]])
    action = torch.tensor([1, 0])
    target = torch.tensor([1.5, 0.0])  # errors 0.5 (quadratic: 0.125) and 3 (linear: 2.5)
    assert q_loss(q, action, target).item() == pytest.approx((0.125 + 2.5) / 2)
    assert q_loss(q, action, target, kind="mse").item() == pytest.approx((0.25 + 9) / 2)


def test_epsilon_schedule():
    kw = {"start": 1.0, "end": 0.1, "frames": 100}
    assert epsilon_at(0, **kw) == 1.0
    assert epsilon_at(50, **kw) == pytest.approx(0.55)
    assert epsilon_at(100, **kw) == pytest.approx(0.1)
    assert epsilon_at(10_000, **kw) == pytest.approx(0.1)


def test_epsilon_greedy_explores_at_the_rate_asked():
    gen = torch.Generator().manual_seed(0)
    q = torch.tensor([0.0, 0.0, 5.0, 0.0])
    n = 4000
    greedy = sum(epsilon_greedy(q, 0.2, gen) == 2 for _ in range(n)) / n
    # P(action 2) = 0.8 + 0.2 / 4 = 0.85; 4 standard errors is about 0.023.
    assert abs(greedy - 0.85) < 0.023
    assert all(epsilon_greedy(q, 0.0, gen) == 2 for _ in range(50))
