"""Environments by name: MinAtar's five games and, with ``ale-py`` installed, Atari with the Nature preprocessing.

Every environment gives observations as ``uint8`` arrays ``(C, H, W)`` (what the replay memory stores),
raw rewards (the agent clips them for learning), and a ``life_lost`` flag (Atari's "episodic life", used
for training targets only). Its whole state, random generator included, can be saved as JSON plus
arrays and restored, so a run stopped mid-episode resumes exactly.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ..errors import CnnkitError, ConfigError, did_you_mean

__all__ = ["ENV_NAMES", "Env", "MinAtarEnv", "canonical_env_name", "make_env", "require"]

MINATAR_GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")
ENV_NAMES = (*MINATAR_GAMES, "atari:<Game>")


def require(module: str, package: str, what: str) -> Any:
    """Import an optional dependency, or raise one line saying which package to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CnnkitError(f"{what} needs the {package!r} package: pip install {package} (or pip install -e \".[rl]\")") from None


class Env(ABC):
    """What the DQN loop steps: ``reset() -> obs``, ``step(a) -> (obs, reward, terminal, life_lost)``."""

    name: str
    num_actions: int
    obs_shape: tuple[int, int, int]

    @abstractmethod
    def seed(self, seed: int) -> None: ...

    @abstractmethod
    def reset(self) -> np.ndarray: ...

    @abstractmethod
    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool]: ...

    @abstractmethod
    def rgb(self) -> np.ndarray:
        """The current screen as ``(H, W, 3)`` uint8, for GIFs."""

    @abstractmethod
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The whole state: JSON-able metadata and named arrays."""

    @abstractmethod
    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None: ...


# ------------------------------------------------------------------------------------------------- MinAtar


def _encode(value: Any, arrays: dict[str, np.ndarray], path: str) -> Any:
    """A game object's attribute as JSON, its numpy arrays set aside in ``arrays`` (tagged, so it decodes)."""
    if isinstance(value, np.random.RandomState):
        kind, keys, pos, has_gauss, gauss = value.get_state()
        arrays[path] = np.asarray(keys, dtype=np.uint32)
        return {"__rng__": path, "state": [kind, int(pos), int(has_gauss), float(gauss)]}
    if isinstance(value, np.ndarray):
        arrays[path] = value.copy()
        return {"__array__": path}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        items = [_encode(v, arrays, f"{path}.{i}") for i, v in enumerate(value)]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, arrays, f"{path}.k{i}"), _encode(v, arrays, f"{path}.v{i}")] for i, (k, v) in enumerate(value.items())]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot snapshot {type(value).__name__} at {path}")


def _decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if isinstance(value, dict):
        if "__rng__" in value:
            kind, pos, has_gauss, gauss = value["state"]
            rng = np.random.RandomState()
            rng.set_state((kind, np.asarray(arrays[value["__rng__"]], dtype=np.uint32), pos, has_gauss, gauss))
            return rng
        if "__array__" in value:
            return np.array(arrays[value["__array__"]])
        if "__tuple__" in value:
            return tuple(_decode(v, arrays) for v in value["__tuple__"])
        return {_decode(k, arrays): _decode(v, arrays) for k, v in value["__dict__"]}
    return value


def _import_minatar() -> Any:
    """``minatar``, without the 10+ s of seaborn (and pyplot) that its ``environment`` module imports only
    for its display window: those two are made unimportable for the duration (MinAtar catches the failure),
    then put back as they were, and MinAtar's warning about them is kept out of the log."""
    import logging
    import sys

    if "minatar" in sys.modules:
        return sys.modules["minatar"]
    blocked = [m for m in ("seaborn", "matplotlib.pyplot") if m not in sys.modules]
    root = logging.getLogger()
    quiet = logging.Filter("minatar-never-matches")  # drops every record while installed
    for m in blocked:
        sys.modules[m] = None  # type: ignore[assignment]  # import now raises ImportError
    root.addFilter(quiet)
    try:
        return require("minatar", "minatar", "MinAtar environments")
    finally:
        root.removeFilter(quiet)
        for m in blocked:
            sys.modules.pop(m, None)


class MinAtarEnv(Env):
    """A MinAtar game (Young & Tian 2019): 10x10 grids of 0/1 channels, 6 actions, sticky actions.

    Observations are MinAtar's ``state()`` ``(10, 10, C)`` booleans, transposed to ``(C, 10, 10)`` uint8.
    """

    def __init__(self, game: str, *, sticky_actions: float = 0.1) -> None:
        minatar = _import_minatar()
        self._env = minatar.Environment(game, sticky_action_prob=sticky_actions)
        self.name = game
        self.num_actions = int(self._env.num_actions())
        h, w, c = self._env.state_shape()
        self.obs_shape = (int(c), int(h), int(w))
        self._palette = _palette(int(c))

    def seed(self, seed: int) -> None:
        self._env.seed(int(seed))

    def _obs(self) -> np.ndarray:
        return np.ascontiguousarray(self._env.state().transpose(2, 0, 1), dtype=np.uint8)

    def reset(self) -> np.ndarray:
        self._env.reset()
        return self._obs()

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool]:
        reward, terminal = self._env.act(int(action))
        return self._obs(), float(reward), bool(terminal), False

    def rgb(self) -> np.ndarray:
        state = self._env.state()  # (10, 10, C) booleans; the last set channel wins, as in MinAtar's display
        idx = np.zeros(state.shape[:2], dtype=np.int64)
        for c in range(state.shape[2]):
            idx[state[:, :, c]] = c + 1
        return np.kron(self._palette[idx], np.ones((16, 16, 1), dtype=np.uint8))  # 160x160 pixels

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {}
        # The wrapper and the game share one RandomState (after seed); encoding each keeps them apart, so
        # set_state ties them together again.
        game = {k: _encode(v, arrays, f"game.{k}") for k, v in vars(self._env.env).items() if k != "random"}
        meta = {"game": game, "last_action": int(self._env.last_action), "random": _encode(self._env.random, arrays, "random")}
        return meta, arrays

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        for k, v in meta["game"].items():
            setattr(self._env.env, k, _decode(v, arrays))
        rng = _decode(meta["random"], arrays)
        self._env.random = rng
        self._env.env.random = rng
        self._env.last_action = int(meta["last_action"])


def _palette(channels: int) -> np.ndarray:
    """Black background plus one distinct colour per channel (matplotlib's tab10)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    colours = [(0, 0, 0)] + [tuple(int(255 * x) for x in cmap(i % 10)[:3]) for i in range(channels)]
    return np.asarray(colours, dtype=np.uint8)


def canonical_env_name(name: str) -> str:
    """``name`` as cnnkit spells it (``Breakout`` -> ``breakout``, ``ALE/Pong`` -> ``atari:Pong``); an unknown
    name raises with close matches. Needs no optional package (whether an Atari game exists is checked when
    it is made)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"Expected an environment name ({', '.join(ENV_NAMES)}). Received: {name!r}")
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key in MINATAR_GAMES:
        return key
    if key.startswith("atari:") and len(name.strip()) > 6:
        return "atari:" + name.strip()[6:]
    if name.startswith("ALE/") and len(name) > 4:
        return "atari:" + name[4:].removesuffix("-v5")
    raise ConfigError(f"unknown environment {name!r}{did_you_mean(key, MINATAR_GAMES)}; environments: {', '.join(ENV_NAMES)}")


def make_env(name: str, *, sticky_actions: float = 0.1, training: bool = True) -> Env:
    """An environment by name (see :data:`ENV_NAMES`); unknown names raise with close matches.

    Args:
        name: a MinAtar game (``breakout``) or ``atari:<Game>`` (``atari:Breakout``).
        sticky_actions: probability of repeating the previous action.
        training: Atari only: a lost life ends the episode for the learning target (episodic life).
    """
    key = canonical_env_name(name)
    if key in MINATAR_GAMES:
        return MinAtarEnv(key, sticky_actions=sticky_actions)
    from .atari import AtariEnv

    return AtariEnv(key[6:], sticky_actions=sticky_actions, episodic_life=training)
