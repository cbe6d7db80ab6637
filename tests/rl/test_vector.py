"""Environments stepped as a vector: copy i is the plain environment seeded seed + i; state round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnkit.rl.envs import make_env
from cnnkit.rl.vector import VectorEnv

pytest.importorskip("minatar")


def _run(step, reset, n: int) -> list[bytes]:
    out = []
    for t in range(n):
        obs, _, terminal, _ = step(t % 6)
        out.append(obs.tobytes())
        if terminal:
            out.append(reset().tobytes())
    return out


def test_copy_i_is_the_plain_environment_seeded_seed_plus_i():
    envs = VectorEnv("seaquest", num_envs=3, seed=7)
    first = envs.reset_all()
    for i in range(3):
        plain = make_env("seaquest")
        plain.seed(7 + i)
        assert np.array_equal(plain.reset(), first[i])
        assert _run(lambda a, i=i: envs.step_one(i, a), lambda i=i: envs.reset(i), 80) == _run(plain.step, plain.reset, 80)


def test_state_round_trip_mid_episode():
    envs = VectorEnv("asterix", num_envs=2, seed=0)
    envs.reset_all()
    for t in range(20):
        envs.step_one(t % 2, t % 6)
    metas, arrays = envs.get_state()
    metas = json.loads(json.dumps(metas))  # as a checkpoint's JSON holds it
    ahead = [_run(lambda a, i=i: envs.step_one(i, a), lambda i=i: envs.reset(i), 50) for i in range(2)]
    envs.set_state(metas, arrays)
    again = [_run(lambda a, i=i: envs.step_one(i, a), lambda i=i: envs.reset(i), 50) for i in range(2)]
    assert ahead == again
    with pytest.raises(ValueError, match="Expected the state of 2 environments. Received: 1"):
        envs.set_state(metas[:1], arrays)
