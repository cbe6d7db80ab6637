"""Atari 2600 through gymnasium + ale-py, with the Nature DQN preprocessing written out (Mnih et al. 2015).

Written here rather than with gymnasium's ``AtariPreprocessing`` + ``FrameStackObservation`` because those
need OpenCV for the resize and cannot save their state mid-episode; this wrapper talks to the ALE directly,
and its whole state (the emulator's, random generators included) is saved for exact resume.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, did_you_mean
from .envs import Env, require

__all__ = ["AtariEnv", "check_atari_game", "preprocess_frame"]

FRAME_SKIP = 4  # Nature, Methods: "the agent sees and selects actions on every kth frame ... k = 4"
STACK = 4  # m = 4 most recent frames
SIZE = 84
NOOP_MAX = 30  # Nature, Extended Data Table 1: "no-op max 30"


def preprocess_frame(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Nature's phi for one step: the pixel-wise max of two consecutive grey frames (Atari sprites flicker),
    rescaled to 84x84 (bilinear), uint8."""
    from PIL import Image

    frame = np.maximum(previous, current)
    return np.asarray(Image.fromarray(frame).resize((SIZE, SIZE), Image.Resampling.BILINEAR), dtype=np.uint8)


def check_atari_game(game: str) -> tuple[Any, Any]:
    """``(gymnasium, ale_py)`` once both are installed and ``ALE/<game>-v5`` is registered; else one line
    naming the package to install or the close matches among the games."""
    gym = require("gymnasium", "gymnasium", f"Atari game {game!r}")
    ale_py = require("ale_py", "ale-py", f"Atari game {game!r}")
    gym.register_envs(ale_py)
    if f"ALE/{game}-v5" not in gym.registry:
        games = sorted(k[4:-3] for k in gym.registry if k.startswith("ALE/") and k.endswith("-v5"))
        raise ConfigError(f"unknown Atari game {game!r}{did_you_mean(game, games)}; e.g. Breakout, Pong, SpaceInvaders")
    return gym, ale_py


class AtariEnv(Env):
    """An Atari game, 4 actions repeated per step, max of the last two frames, 84x84 grey, stack of 4,
    up to 30 no-ops at reset, and a lost life flagged for training (``episodic_life``).

    Deviations:
        The luminance is the ALE's own greyscale screen; the resize is PIL's bilinear (the paper does not
        name its filter). Rewards are clipped by the agent, not here, so evaluation reports game scores.
    """

    def __init__(self, game: str, *, sticky_actions: float = 0.0, episodic_life: bool = True) -> None:
        gym, ale_py = check_atari_game(game)
        self._gym = gym.make(f"ALE/{game}-v5", frameskip=1, repeat_action_probability=sticky_actions, obs_type="grayscale")
        self._gym.reset(seed=0)
        self._ale = self._gym.unwrapped.ale
        self._actions = list(self._gym.unwrapped._action_set)
        self._ale_py = ale_py
        self.name = f"atari:{game}"
        self.num_actions = len(self._actions)
        self.obs_shape = (STACK, SIZE, SIZE)
        self.episodic_life = episodic_life
        self._rng = np.random.RandomState(0)
        self._stack = np.zeros(self.obs_shape, dtype=np.uint8)
        self._lives = 0

    def seed(self, seed: int) -> None:
        self._gym.reset(seed=int(seed))
        self._rng = np.random.RandomState(int(seed))

    def _screen(self) -> np.ndarray:
        return self._ale.getScreenGrayscale()

    def reset(self) -> np.ndarray:
        self._ale.reset_game()
        prev = cur = self._screen()
        for _ in range(self._rng.randint(1, NOOP_MAX + 1)):  # no-op starts
            self._ale.act(self._actions[0])
            prev, cur = cur, self._screen()
        self._stack[:] = preprocess_frame(prev, cur)  # the first stack repeats the first frame
        self._lives = self._ale.lives()
        return self._stack.copy()

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool]:
        reward, frames = 0.0, []
        for i in range(FRAME_SKIP):
            reward += self._ale.act(self._actions[int(action)])
            if i >= FRAME_SKIP - 2:
                frames.append(self._screen())
            if self._ale.game_over():
                break
        frames = frames or [self._screen()]
        self._stack = np.roll(self._stack, -1, axis=0)
        self._stack[-1] = preprocess_frame(frames[0], frames[-1])
        lives = self._ale.lives()
        life_lost = self.episodic_life and 0 < lives < self._lives
        self._lives = lives
        return self._stack.copy(), float(reward), bool(self._ale.game_over()), bool(life_lost)

    def rgb(self) -> np.ndarray:
        return self._ale.getScreenRGB()

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        ale_state = np.frombuffer(self._ale.cloneState(include_rng=True).serialize(), dtype=np.uint8).copy()
        kind, keys, pos, has_gauss, gauss = self._rng.get_state()
        meta = {"lives": int(self._lives), "rng": [kind, int(pos), int(has_gauss), float(gauss)]}
        return meta, {"ale": ale_state, "stack": self._stack.copy(), "rng_keys": np.asarray(keys, dtype=np.uint32)}

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self._ale.restoreState(self._ale_py.ALEState(np.asarray(arrays["ale"], dtype=np.uint8).tobytes()))
        self._stack = np.array(arrays["stack"], dtype=np.uint8)
        self._lives = int(meta["lives"])
        kind, pos, has_gauss, gauss = meta["rng"]
        self._rng.set_state((kind, np.asarray(arrays["rng_keys"], dtype=np.uint32), pos, has_gauss, gauss))
