"""Board games with OpenSpiel: PUCT search with a policy/value network trained by self-play (AlphaZero),
Blondie24's co-evolution, move prediction from recorded games, and play against random, MCTS or a human."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .mcts import Node as Node
from .mcts import backup as backup
from .mcts import puct_score as puct_score
from .mcts import run_mcts as run_mcts
from .mcts import select_child as select_child
from .mcts import visit_policy as visit_policy
from .openspiel import load_game as load_game

__all__ = ["Node", "backup", "load_game", "puct_score", "run_mcts", "runner_for", "select_child", "visit_policy"]


def runner_for(task: str) -> Callable[..., dict[str, Any]]:
    """The loop of a game task (``alphazero``, ``blondie24``, ``move-prediction``)."""
    if task == "alphazero":
        from .alphazero import run_alphazero

        return run_alphazero
    if task == "blondie24":
        from .blondie24 import run_blondie24

        return run_blondie24
    from .supervised import run_move_prediction

    return run_move_prediction
