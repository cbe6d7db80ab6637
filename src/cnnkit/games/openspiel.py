"""OpenSpiel games by name, and what a network sees of a state.

The network's input is OpenSpiel's observation tensor of the state (reshaped to its ``(C, H, W)``
shape) plus one constant plane holding the player to move, so that games whose observation does not say
whose turn it is (checkers) are read the same way as those where the piece count tells (tic-tac-toe).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, did_you_mean
from ..rl.envs import require

__all__ = ["GAME_EXAMPLES", "board_tensor", "game_facts", "legal_mask", "load_game"]

GAME_EXAMPLES = ("tic_tac_toe", "connect_four", "checkers", "go(board_size=9)")


def load_game(name: str) -> Any:
    """A two-player, sequential, zero-sum OpenSpiel game by name (``go(board_size=9)`` with options).

    Raises:
        ConfigError: an unknown game (with close matches) or one of another kind.
        CnnkitError: OpenSpiel is not installed (one line saying what to install).
    """
    pyspiel = require("pyspiel", "open_spiel", f"game {name!r}")
    base = name.split("(", 1)[0].strip()
    known = list(pyspiel.registered_names())
    if base not in known:
        raise ConfigError(f"unknown game {name!r}{did_you_mean(base, known)}; e.g. {', '.join(GAME_EXAMPLES)}")
    try:
        game = pyspiel.load_game(name)
    except Exception as exc:  # pyspiel raises its own SpielError for bad parameters
        raise ConfigError(f"game {name!r}: {str(exc).splitlines()[0]}") from None
    info = game.get_type()
    if game.num_players() != 2 or info.dynamics != pyspiel.GameType.Dynamics.SEQUENTIAL or \
            info.utility != pyspiel.GameType.Utility.ZERO_SUM or info.chance_mode != pyspiel.GameType.ChanceMode.DETERMINISTIC:
        raise ConfigError(f"game {name!r} is not a deterministic two-player zero-sum turn-taking game; e.g. {', '.join(GAME_EXAMPLES)}")
    return game


def game_facts(game: Any) -> dict[str, Any]:
    """What the network builder needs: input planes, board ``(rows, cols)`` and the number of actions."""
    shape = list(game.observation_tensor_shape())
    if len(shape) == 2:
        shape = [1, *shape]
    if len(shape) != 3:
        raise ConfigError(f"game {game} has a {len(shape)}-d observation; a board game with (C, H, W) planes is needed")
    return {"in_channels": int(shape[0]) + 1, "board": [int(shape[1]), int(shape[2])], "num_actions": int(game.num_distinct_actions())}


def board_tensor(state: Any, facts: dict[str, Any]) -> torch.Tensor:
    """``(C + 1, H, W)`` float32: the observation of the player to move, then the to-move plane (0 or 1)."""
    rows, cols = facts["board"]
    player = state.current_player()
    obs = np.asarray(state.observation_tensor(player), dtype=np.float32).reshape(-1, rows, cols)
    turn = np.full((1, rows, cols), float(player), dtype=np.float32)
    return torch.from_numpy(np.concatenate([obs, turn]))


def legal_mask(state: Any, num_actions: int) -> torch.Tensor:
    mask = torch.zeros(num_actions, dtype=torch.bool)
    mask[list(state.legal_actions())] = True
    return mask
