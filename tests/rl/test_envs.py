"""Environments by name: MinAtar (and Atari when ale-py is installed), exact state snapshots, bad names."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit.errors import CnnkitError, ConfigError
from cnnkit.rl.envs import make_env, require


def test_unknown_environment_suggests_close_names():
    with pytest.raises(ConfigError, match=r"unknown environment 'breakut'; did you mean 'breakout'\?"):
        make_env("breakut")


def test_missing_package_is_one_line_naming_it():
    with pytest.raises(CnnkitError, match=r"needs the 'no-such-pkg' package: pip install no-such-pkg"):
        require("no_such_module_xyz", "no-such-pkg", "environment 'x'")


@pytest.mark.parametrize("game,channels", [("breakout", 4), ("asterix", 4), ("freeway", 7), ("seaquest", 10), ("space_invaders", 6)])
def test_minatar_games_give_uint8_chw(game: str, channels: int):
    pytest.importorskip("minatar")
    env = make_env(game)
    env.seed(0)
    obs = env.reset()
    assert obs.shape == (channels, 10, 10) and obs.dtype == np.uint8 and env.num_actions == 6
    obs, reward, terminal, life_lost = env.step(1)
    assert obs.shape == (channels, 10, 10) and isinstance(reward, float) and life_lost is False


def _rollout(env, n: int) -> list[np.ndarray]:
    out = []
    for t in range(n):
        obs, reward, terminal, _ = env.step(t % env.num_actions)
        out.append(obs)
        if terminal:
            out.append(env.reset())
    return out


@pytest.mark.parametrize("name", ["breakout", "seaquest", "atari:Breakout"])
def test_state_snapshot_restores_mid_episode_exactly(name: str):
    if name.startswith("atari"):
        pytest.importorskip("ale_py")
        pytest.importorskip("gymnasium")
    else:
        pytest.importorskip("minatar")
    env = make_env(name)
    env.seed(3)
    env.reset()
    _rollout(env, 25)
    meta, arrays = env.get_state()
    import json

    meta = json.loads(json.dumps(meta))  # it must survive JSON, as in a checkpoint
    first = _rollout(env, 60)
    env.set_state(meta, arrays)
    again = _rollout(env, 60)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_atari_nature_preprocessing():
    pytest.importorskip("ale_py")
    pytest.importorskip("gymnasium")
    env = make_env("atari:Breakout")
    env.seed(0)
    obs = env.reset()
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert all(np.array_equal(obs[0], obs[i]) for i in range(4))  # the first stack repeats the first frame
    nxt, *_ = env.step(1)
    assert np.array_equal(nxt[:3], obs[1:])  # the stack slides by one frame
    with pytest.raises(ConfigError, match="unknown Atari game 'Breakot'.*did you mean 'Breakout'"):
        make_env("atari:Breakot")


def test_missing_atari_package_is_one_line(monkeypatch: pytest.MonkeyPatch):
    import sys

    monkeypatch.setitem(sys.modules, "ale_py", None)  # as if ale-py were not installed
    with pytest.raises(CnnkitError, match=r"^Atari game 'Breakout' needs the '(gymnasium|ale-py)' package: pip install"):
        make_env("atari:Breakout")


def test_names_in_their_canonical_spelling():
    from cnnkit.rl.envs import canonical_env_name

    assert canonical_env_name("Space-Invaders") == "space_invaders"
    assert canonical_env_name("ALE/Pong-v5") == "atari:Pong" and canonical_env_name("atari:Pong") == "atari:Pong"
    with pytest.raises(ConfigError, match="did you mean 'seaquest'"):
        canonical_env_name("seaquset")
