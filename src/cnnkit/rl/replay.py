"""The replay memory D of Mnih et al. (2015): the last N transitions, uint8 observations, preallocated.

Its size is computed before anything is allocated and refused in one line when it would not fit in the
memory the machine has free, rather than failing (or swapping) hours into a run.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["ReplayMemory", "available_memory", "check_replay_fits", "replay_bytes"]


def replay_bytes(capacity: int, obs_shape: tuple[int, ...]) -> int:
    """Bytes of a memory of ``capacity`` transitions: two uint8 observations, an int64 action, a float32
    reward and a bool terminal flag each."""
    obs = 1
    for s in obs_shape:
        obs *= int(s)
    return int(capacity) * (2 * obs + 8 + 4 + 1)


def available_memory() -> int | None:
    """Bytes the kernel reports as available (``MemAvailable``), or None where it says nothing."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_replay_fits(capacity: int, obs_shape: tuple[int, ...], *, device: torch.device | str = "cpu", fraction: float = 0.8) -> None:
    """Refuse, in one line, a memory larger than ``fraction`` of the available memory: computed from the sizes
    alone, before anything is allocated (GPU memory is not checked here: CUDA's own error is clear)."""
    need = replay_bytes(capacity, obs_shape)
    free = available_memory() if torch.device(device).type == "cpu" else None
    if free is not None and need > fraction * free:
        raise ConfigError(
            f"replay memory of {capacity:,} transitions of shape {tuple(obs_shape)} needs {need / 2**30:.2f} GiB, "
            f"more than {fraction:.0%} of the {free / 2**30:.2f} GiB available; lower task.replay_size"
        )


class ReplayMemory:
    """A ring buffer of ``(s, a, r, s', terminal)`` transitions, sampled uniformly (Mnih et al. 2015, Algorithm 1).

    Args:
        capacity: N, transitions kept; the oldest is overwritten first.
        obs_shape: one observation's shape ``(C, H, W)``; stored as uint8.
        device: where the tensors live (sampling returns tensors there).
        fraction: refuse a memory larger than this share of the available memory.

    Raises:
        ConfigError: the memory would not fit (computed before allocating).

    Deviations:
        Stores s and s' separately (twice the memory of sharing frames between consecutive stacks, as
        DeepMind's implementation does), which keeps the sampler exact across episode boundaries.
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], *, device: torch.device | str = "cpu", fraction: float = 0.8) -> None:
        check_replay_fits(capacity, obs_shape, device=device, fraction=fraction)
        self.capacity = int(capacity)
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.device = torch.device(device)
        self.obs = torch.zeros((self.capacity, *self.obs_shape), dtype=torch.uint8, device=self.device)
        self.next_obs = torch.zeros_like(self.obs)
        self.action = torch.zeros(self.capacity, dtype=torch.int64, device=self.device)
        self.reward = torch.zeros(self.capacity, dtype=torch.float32, device=self.device)
        self.terminal = torch.zeros(self.capacity, dtype=torch.bool, device=self.device)
        self.position = 0  # the next slot to write
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: Tensor, action: int, reward: float, next_obs: Tensor, terminal: bool) -> None:
        i = self.position
        self.obs[i] = obs
        self.next_obs[i] = next_obs
        self.action[i] = int(action)
        self.reward[i] = float(reward)
        self.terminal[i] = bool(terminal)
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``batch_size`` transitions drawn uniformly with replacement, from ``generator`` (seeded, saved)."""
        if self.size == 0:
            raise ValueError("Expected a non-empty replay memory. Received: size=0")
        idx = torch.randint(0, self.size, (batch_size,), generator=generator).to(self.device)
        return self.obs[idx], self.action[idx], self.reward[idx], self.next_obs[idx], self.terminal[idx]

    def state_tensors(self, prefix: str = "replay/") -> dict[str, Tensor]:
        """The filled part, for a checkpoint (with :attr:`position` and :attr:`size` in its JSON)."""
        n = self.size
        return {f"{prefix}{k}": getattr(self, k)[:n] for k in ("obs", "next_obs", "action", "reward", "terminal")}

    def load_tensors(self, tensors: dict[str, Tensor], *, position: int, size: int, prefix: str = "replay/") -> None:
        for k in ("obs", "next_obs", "action", "reward", "terminal"):
            getattr(self, k)[:size] = tensors[f"{prefix}{k}"].to(self.device)
        self.position, self.size = int(position), int(size)
