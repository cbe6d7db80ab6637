"""PUCT Monte Carlo tree search (Silver et al. 2017, Methods "Search algorithm"; Rosin 2011).

Each simulation descends from the root choosing ``argmax_a Q(s, a) + U(s, a)`` with
``U(s, a) = c_puct * P(s, a) * sqrt(sum_b N(s, b)) / (1 + N(s, a))``, expands the leaf with the network's
priors P and value v, and backs v up the path: every edge adds the value *for the player who chose it*
(``+v`` when that player is the one to move at the leaf, ``-v`` otherwise; a terminal leaf uses the game's
returns), so ``Q(s, a) = W(s, a) / N(s, a)`` is always the chooser's expected outcome. Unvisited edges have
Q = 0. Written here because OpenSpiel's own MCTS is the plain UCT of Kocsis & Szepesvari (random
rollouts, no priors); that bot is the benchmark opponent.

Deviations:
    No virtual loss or batched leaf evaluation (one evaluation per simulation, on one CPU thread).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Node", "Evaluator", "puct_score", "select_child", "backup", "run_mcts", "visit_policy"]

Evaluator = Callable[[Any], tuple[dict[int, float], float]]
"""``evaluate(state) -> ({action: prior} over legal actions, value for the player to move)``."""


@dataclass
class Node:
    """An edge-and-node: the statistics of the action that led here, chosen by ``player``."""

    prior: float
    player: int  # who chose the action into this node
    visits: int = 0
    value_sum: float = 0.0
    children: dict[int, Node] = field(default_factory=dict)

    @property
    def q(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0


def puct_score(parent_visits: int, child: Node, c_puct: float) -> float:
    """``Q + c_puct * P * sqrt(N_parent) / (1 + N_child)``."""
    return child.q + c_puct * child.prior * math.sqrt(parent_visits) / (1 + child.visits)


def select_child(node: Node, c_puct: float) -> tuple[int, Node]:
    """The child with the highest PUCT score (ties: the lowest action id).

    The parent count is the children's visits, but at least 1: at a node's first selection every child is
    unvisited, and with ``sqrt(0)`` the U term would vanish and the lowest action id would win whatever the
    priors say (AlphaZero's pseudocode counts the expanding visit, which is the same 1 at that point)."""
    total = max(1, sum(c.visits for c in node.children.values()))
    return max(node.children.items(), key=lambda kv: (puct_score(total, kv[1], c_puct), -kv[0]))


def backup(path: list[Node], value: float, leaf_player: int) -> None:
    """Add one visit and ``value`` (for ``leaf_player``, the player to move at the leaf) along ``path``."""
    for node in path:
        node.visits += 1
        node.value_sum += value if node.player == leaf_player else -value


def _expand(node: Node, state: Any, evaluate: Evaluator) -> float:
    priors, value = evaluate(state)
    player = state.current_player()
    for action, p in priors.items():
        node.children[action] = Node(prior=float(p), player=player)
    return value


def run_mcts(
    state: Any, evaluate: Evaluator, *, simulations: int, c_puct: float, rng: np.random.RandomState | None = None,
    dirichlet_alpha: float = 0.0, dirichlet_fraction: float = 0.0,
) -> Node:
    """Search from ``state`` (not modified) and return the root; with ``dirichlet_fraction`` > 0 the root's
    priors are mixed with Dir(alpha) noise, ``(1 - eps) P + eps eta`` (AlphaGo Zero's exploration)."""
    root = Node(prior=1.0, player=-1)
    _expand(root, state, evaluate)
    if dirichlet_fraction > 0 and root.children and rng is not None:
        noise = rng.dirichlet([dirichlet_alpha] * len(root.children))
        for (_, child), eta in zip(sorted(root.children.items()), noise):
            child.prior = (1 - dirichlet_fraction) * child.prior + dirichlet_fraction * float(eta)
    for _ in range(simulations):
        node, sim, path = root, state.clone(), []
        while node.children:
            action, node = select_child(node, c_puct)
            sim.apply_action(action)
            path.append(node)
        if sim.is_terminal():
            mover = path[-1].player if path else 0
            value, leaf_player = float(sim.returns()[mover]), mover
        else:
            leaf_player = sim.current_player()
            value = _expand(node, sim, evaluate)
        backup(path, value, leaf_player)
    return root


def visit_policy(root: Node, num_actions: int, temperature: float = 1.0) -> np.ndarray:
    """Visit counts as a distribution over all actions: ``N^(1/T)`` normalised; T = 0 puts 1 on the most visited."""
    pi = np.zeros(num_actions, dtype=np.float64)
    if not root.children:
        return pi
    actions = sorted(root.children)
    counts = np.array([root.children[a].visits for a in actions], dtype=np.float64)
    if temperature == 0:
        pi[actions[int(np.argmax(counts))]] = 1.0
        return pi
    weights = counts ** (1.0 / temperature)
    if weights.sum() == 0:
        weights = np.ones_like(weights)
    pi[actions] = weights / weights.sum()
    return pi
