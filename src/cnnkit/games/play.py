"""``cnnkit play RUN --against random|mcts:N|human``: a trained game agent plays, alternating sides."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import CnnkitError
from .agents import (
    human_agent,
    mcts_agent,
    minimax_agent,
    openspiel_mcts_agent,
    parse_opponent,
    play_game,
    random_agent,
)
from .blondie24 import player0_values
from .openspiel import load_game
from .session_tools import win_rate

__all__ = ["play_games", "agent_from_run"]


def agent_from_run(loaded: Any) -> tuple[Any, Any, dict[str, Any]]:
    """The game, the run's agent and the game facts from a loaded run."""
    meta = loaded.info.get("data_meta") or {}
    name = meta.get("game")
    if not isinstance(name, str):
        raise CnnkitError(f"{loaded.path}/model.json does not name its game (data_meta.game)")
    game = load_game(name)
    facts = {"in_channels": int(meta["in_channels"]), "board": list(meta["board"]), "num_actions": int(meta["num_actions"])}
    if loaded.info.get("task", {}).get("name") == "blondie24":
        agent = minimax_agent(player0_values(loaded.model, facts), depth=int(meta.get("depth", 2)))
    else:
        agent = mcts_agent(loaded.model, facts, simulations=int(meta.get("simulations", 25)), c_puct=float(meta.get("c_puct", 1.5)))
    return game, agent, facts


def play_games(loaded: Any, *, games: int, against: str, seed: int = 0, input_fn: Any = input, output_fn: Any = print) -> dict[str, Any]:
    """``games`` games (the run's agent first in even games, second in odd ones); results for the run's agent."""
    kind, sims = parse_opponent(against)
    if games < 1:
        raise CnnkitError(f"Expected --episodes >= 1. Received: {games}")
    game, me, _ = agent_from_run(loaded)
    if kind == "random":
        other = random_agent(np.random.RandomState(seed))
    elif kind == "mcts":
        other = openspiel_mcts_agent(game, simulations=sims, seed=seed)
    else:
        other = human_agent(input_fn, output_fn)
    results = []
    for g in range(games):
        r = play_game(game, (me, other)) if g % 2 == 0 else -play_game(game, (other, me))
        results.append(r)
        if kind == "human":
            output_fn(f"game {g + 1}: {'the agent won' if r > 0 else 'you won' if r < 0 else 'a draw'}")
    rates = win_rate(results, kind)
    return {"games": games, "against": against, "wins": sum(r > 0 for r in results), "draws": sum(r == 0 for r in results),
            "losses": sum(r < 0 for r in results), "results": results, **rates}
