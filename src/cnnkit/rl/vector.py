"""Several copies of one environment stepped as a vector, so the agent picks all their actions with one
batched forward pass of its Q-network (``env.num_envs``).

Written here rather than with gymnasium's ``SyncVectorEnv``: cnnkit's environments are not gymnasium
environments (MinAtar's is not, and the Atari one talks to the ALE directly, see :mod:`cnnkit.rl.atari`),
and exact resume needs every copy's whole state saved and restored, which gymnasium's vector
environments do not offer. Its ``AsyncVectorEnv`` (one process per copy) would not help on a small CPU
either: MinAtar steps in microseconds, and the time goes into the network, which batching is for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .envs import Env, make_env

__all__ = ["VectorEnv"]


class VectorEnv:
    """``num_envs`` copies of the environment ``name``; copy ``i`` is seeded with ``seed + i``, so one copy
    is the plain environment of the same seed.

    Copies are stepped one after the other (:meth:`step_one`), so the caller stores each transition and
    resets a finished copy before the next; no copy resets itself.
    """

    def __init__(self, name: str, *, num_envs: int, seed: int, sticky_actions: float = 0.1, training: bool = True) -> None:
        if num_envs < 1:
            raise ValueError(f"Expected num_envs >= 1. Received: num_envs={num_envs}")
        self.envs: list[Env] = [make_env(name, sticky_actions=sticky_actions, training=training) for _ in range(num_envs)]
        for i, env in enumerate(self.envs):
            env.seed(seed + i)
        first = self.envs[0]
        self.name, self.num_actions, self.obs_shape = first.name, first.num_actions, first.obs_shape

    def __len__(self) -> int:
        return len(self.envs)

    def reset_all(self) -> np.ndarray:
        """First observations of every copy, ``(N, C, H, W)`` uint8."""
        return np.stack([env.reset() for env in self.envs])

    def reset(self, i: int) -> np.ndarray:
        return self.envs[i].reset()

    def step_one(self, i: int, action: int) -> tuple[np.ndarray, float, bool, bool]:
        return self.envs[i].step(action)

    def rgb(self) -> np.ndarray:
        return self.envs[0].rgb()

    def get_state(self) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
        """Every copy's state: a list of JSON metadata and arrays named ``"<i>/<name>"``."""
        metas, arrays = [], {}
        for i, env in enumerate(self.envs):
            meta, arr = env.get_state()
            metas.append(meta)
            arrays.update({f"{i}/{k}": v for k, v in arr.items()})
        return metas, arrays

    def set_state(self, metas: list[dict[str, Any]], arrays: dict[str, np.ndarray]) -> None:
        if len(metas) != len(self.envs):
            raise ValueError(f"Expected the state of {len(self.envs)} environments. Received: {len(metas)}")
        for i, (env, meta) in enumerate(zip(self.envs, metas)):
            prefix = f"{i}/"
            env.set_state(meta, {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
