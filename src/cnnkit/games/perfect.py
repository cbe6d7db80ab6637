"""Scoring a game agent against perfect play, on positions small games let alpha-beta solve exactly.

Win rates against a weak opponent mostly measure the look-ahead (PUCT with an untrained network already
beats a random tic-tac-toe player); scored against solved positions, the raw policy, the search and the
value head each show what training added. The solver is OpenSpiel's full-depth alpha-beta
(``open_spiel.python.algorithms.minimax.alpha_beta_search``), so only games with small trees qualify
(tic-tac-toe: 0.05 s per position here).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .agents import net_evaluator
from .play import agent_from_run

__all__ = ["random_positions", "solve", "perfect_play"]


def random_positions(game: Any, n: int, seed: int = 0) -> list[Any]:
    """``n`` distinct non-terminal positions reached by uniformly random play (a random number of moves)."""
    rng = np.random.RandomState(seed)
    seen: dict[str, Any] = {}
    for _ in range(200 * n):
        if len(seen) >= n:
            break
        state = game.new_initial_state()
        for _ in range(rng.randint(0, game.max_game_length())):
            if state.is_terminal():
                break
            state.apply_action(int(rng.choice(state.legal_actions())))
        if not state.is_terminal():
            seen.setdefault(str(state), state)
    return list(seen.values())


def solve(game: Any, state: Any) -> tuple[float, dict[int, float]]:
    """The solved value for the player to move, and each move's value for that player (alpha-beta, full depth)."""
    from open_spiel.python.algorithms import minimax

    me = state.current_player()
    moves = {}
    for a in state.legal_actions():
        child = state.child(a)
        moves[a] = float(child.returns()[me]) if child.is_terminal() else \
            float(minimax.alpha_beta_search(game, child, maximizing_player_id=me)[0])
    return max(moves.values()), moves


def perfect_play(loaded: Any, positions: list[Any], solved: list[tuple[float, dict[int, float]]]) -> dict[str, float | None]:
    """How often the run's agent plays an optimal move (``search``), and for a policy/value network how often
    its raw policy's favourite move is optimal (``policy``) and its value's sign is the solved outcome for the
    player to move (``value``; a draw is right when ``|v| < 1/3``). ``solved`` is :func:`solve` per position.
    A Blondie24 run (an evaluator, no policy) scores ``search`` only."""
    _, agent, facts = agent_from_run(loaded)
    has_heads = loaded.info.get("task", {}).get("name") == "alphazero"
    evaluate = net_evaluator(loaded.model, facts) if has_heads else None
    policy_ok = search_ok = value_ok = 0
    for state, (best, moves) in zip(positions, solved):
        search_ok += moves[agent(state)] == best
        if evaluate is not None:
            priors, value = evaluate(state)
            policy_ok += moves[max(priors, key=priors.__getitem__)] == best
            value_ok += bool(abs(value) < 1 / 3) if best == 0 else bool(np.sign(value) == np.sign(best) and abs(value) >= 1 / 3)
    n = len(positions)
    return {"search": search_ok / n, "policy": policy_ok / n if has_heads else None, "value": value_ok / n if has_heads else None}
