"""Replay memory: ring overwrite, seeded uniform sampling, the size check before allocation."""

from __future__ import annotations

import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.rl.replay import ReplayMemory, replay_bytes


def _fill(mem: ReplayMemory, n: int) -> None:
    for i in range(n):
        obs = torch.full(mem.obs_shape, i % 256, dtype=torch.uint8)
        mem.add(obs, i % 3, float(i), obs + 1, i % 5 == 0)


def test_ring_keeps_the_newest():
    mem = ReplayMemory(4, (1, 2, 2))
    _fill(mem, 6)
    assert len(mem) == 4 and mem.position == 2
    assert sorted(mem.reward.tolist()) == [2.0, 3.0, 4.0, 5.0]
    assert mem.obs.dtype == torch.uint8


def test_sampling_is_seeded_and_uniform():
    mem = ReplayMemory(10, (1, 1, 1))
    _fill(mem, 10)
    a = mem.sample(8, torch.Generator().manual_seed(3))
    b = mem.sample(8, torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(10)
    for _ in range(500):
        _, _, r, _, _ = mem.sample(32, gen)
        counts += torch.bincount(r.long(), minlength=10)
    # 16,000 draws over 10 slots: each about 1,600, standard deviation 38; a chi-square test at 9 dof.
    chi2 = ((counts - 1600) ** 2 / 1600).sum().item()
    assert chi2 < 27.9  # p = 0.001


def test_transition_fields_stay_together():
    mem = ReplayMemory(16, (1, 1, 1))
    _fill(mem, 16)
    obs, action, reward, next_obs, terminal = mem.sample(64, torch.Generator().manual_seed(1))
    i = reward.long()
    assert torch.equal(obs.flatten().long(), i % 256)
    assert torch.equal(next_obs.flatten().long(), i % 256 + 1)
    assert torch.equal(action, i % 3) and torch.equal(terminal, i % 5 == 0)


def test_memory_that_does_not_fit_is_refused_before_allocating():
    assert replay_bytes(1_000_000, (4, 84, 84)) == 1_000_000 * (2 * 28224 + 13)
    with pytest.raises(ConfigError, match=r"needs 5\d.\d\d GiB.*lower task.replay_size"):
        ReplayMemory(1_000_000, (4, 84, 84), fraction=1e-6)


def test_state_round_trip():
    mem = ReplayMemory(8, (2, 3, 3))
    _fill(mem, 11)
    other = ReplayMemory(8, (2, 3, 3))
    other.load_tensors(mem.state_tensors(), position=mem.position, size=mem.size)
    assert torch.equal(other.obs, mem.obs) and torch.equal(other.reward, mem.reward) and other.position == mem.position
