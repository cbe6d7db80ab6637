"""Players: the network with PUCT search, a minimax searcher with an evolved evaluator, a uniformly
random player, OpenSpiel's plain MCTS bot, and a human at the terminal; and :func:`play_game`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .._text import safe_text
from ..errors import CnnkitError
from .mcts import Evaluator, run_mcts, visit_policy
from .openspiel import board_tensor

__all__ = [
    "Agent", "net_evaluator", "mcts_agent", "random_agent", "openspiel_mcts_agent", "human_agent", "minimax_agent",
    "play_game", "parse_opponent",
]

Agent = Callable[[Any], int]
"""``agent(state) -> action`` for the player to move."""


def net_evaluator(model: nn.Module, facts: dict[str, Any]) -> Evaluator:
    """Priors (softmax of the legal moves' logits) and value (the last output) of a policy/value network."""
    model.eval()

    @torch.no_grad()
    def evaluate(state: Any) -> tuple[dict[int, float], float]:
        out = model(board_tensor(state, facts).unsqueeze(0))[0].float()
        legal = list(state.legal_actions())
        p = torch.softmax(out[:-1][legal], dim=0).tolist()
        return dict(zip(legal, p)), float(out[-1])

    return evaluate


def mcts_agent(model: nn.Module, facts: dict[str, Any], *, simulations: int, c_puct: float = 1.5) -> Agent:
    """The network's PUCT search, playing the most visited move."""
    evaluate = net_evaluator(model, facts)

    def act(state: Any) -> int:
        root = run_mcts(state, evaluate, simulations=simulations, c_puct=c_puct)
        return int(np.argmax(visit_policy(root, facts["num_actions"], temperature=0)))

    return act


def random_agent(rng: np.random.RandomState) -> Agent:
    def act(state: Any) -> int:
        legal = list(state.legal_actions())
        return int(legal[rng.randint(len(legal))])

    return act


def openspiel_mcts_agent(game: Any, *, simulations: int, seed: int) -> Agent:
    """OpenSpiel's MCTS bot: UCT (c = 2) with random rollouts, ``simulations`` per move."""
    from open_spiel.python.algorithms import mcts

    rng = np.random.RandomState(seed)
    bot = mcts.MCTSBot(game, uct_c=2.0, max_simulations=simulations, evaluator=mcts.RandomRolloutEvaluator(1, rng),
                       random_state=rng, solve=False)

    def act(state: Any) -> int:
        return int(bot.step(state))

    return act


def minimax_agent(values: Callable[[list[Any]], list[float]], *, depth: int) -> Agent:
    """Alpha-beta minimax to ``depth`` ply with ``values(states)`` (for player 0, one batch per node above
    the leaves) at the leaves, as Blondie24 searched with its evolved network (Chellapilla & Fogel 2001, Sec. III)."""

    def leaf(state: Any) -> float | None:
        return float(state.returns()[0]) * 2.0 if state.is_terminal() else None  # beyond any evaluation in [-1, 1]

    def _leaf_or(state: Any, scores: Any) -> float:
        done = leaf(state)
        return float(next(scores)) if done is None else done

    def search(state: Any, d: int, alpha: float, beta: float) -> float:
        done = leaf(state)
        if done is not None:
            return done
        if d == 0:
            return values([state])[0]
        if d == 1:  # the leaves in one batch: one network call per node instead of one per child
            children = [state.child(a) for a in state.legal_actions()]
            open_ = [c for c in children if not c.is_terminal()]
            scores = iter(values(open_)) if open_ else iter(())
            vals: list[float] = [_leaf_or(c, scores) for c in children]
            return max(vals) if state.current_player() == 0 else min(vals)
        maximizing = state.current_player() == 0
        best = -math.inf if maximizing else math.inf
        for a in state.legal_actions():
            child = state.child(a)
            v = search(child, d - 1, alpha, beta)
            if maximizing:
                best, alpha = max(best, v), max(alpha, v)
            else:
                best, beta = min(best, v), min(beta, v)
            if beta <= alpha:
                break
        return best

    def act(state: Any) -> int:
        sign = 1.0 if state.current_player() == 0 else -1.0
        scored = [(sign * search(state.child(a), depth - 1, -math.inf, math.inf), -a, a) for a in state.legal_actions()]
        return int(max(scored)[2])

    return act


def human_agent(input_fn: Callable[[str], str] = input, output_fn: Callable[[str], None] = print) -> Agent:
    """Moves typed at the terminal, as OpenSpiel writes them (``x(1,1)``, ``3``, ``c3b4``; Go's ``W a1``, or
    just ``a1`` or ``pass``: the player prefix and case may be left out) or as action ids; an illegal or
    unknown move is one line naming legal ones (the first 24 and how many there are), and the prompt again."""

    def act(state: Any) -> int:
        legal = list(state.legal_actions())
        names = {state.action_to_string(state.current_player(), a): a for a in legal}
        short = {n.split()[-1].lower(): a for n, a in names.items() if n.split()}  # "W a1" -> "a1"
        if len(short) != len(names):  # ambiguous without the prefix: only the full names
            short = {}
        shown = ", ".join(list(names)[:24]) + (f", ... ({len(names)} legal moves)" if len(names) > 24 else "")
        output_fn(str(state))
        while True:
            try:
                text = input_fn(f"your move ({', '.join(list(names)[:12])}{', ...' if len(names) > 12 else ''}): ").strip()
            except EOFError:
                raise CnnkitError("no move typed (end of input); the game was abandoned") from None
            if text in names:
                return names[text]
            if text.lower() in short:
                return short[text.lower()]
            if text.lstrip("-").isdigit() and int(text) in legal:
                return int(text)
            output_fn(f"illegal move {safe_text(text, 40)!r}: legal moves are {shown}")

    return act


def play_game(game: Any, agents: tuple[Agent, Agent], *, max_moves: int | None = None) -> float:
    """One game; the return for player 0 (+1 win, -1 loss, 0 draw; a game cut at ``max_moves`` is a draw)."""
    state = game.new_initial_state()
    moves = 0
    while not state.is_terminal():
        if max_moves is not None and moves >= max_moves:
            return 0.0
        state.apply_action(agents[state.current_player()](state))
        moves += 1
    return float(state.returns()[0])


def parse_opponent(text: str) -> tuple[str, int]:
    """``random`` | ``mcts:N`` | ``human`` -> (kind, simulations)."""
    kind, _, n = text.partition(":")
    if kind in ("random", "human") and not n:
        return kind, 0
    if kind == "mcts" and n.isdigit() and int(n) > 0:
        return kind, int(n)
    raise CnnkitError(f"--against {safe_text(text, 40)!r}: expected random, mcts:N (N simulations, e.g. mcts:100) or human")
