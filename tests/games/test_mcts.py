"""PUCT selection and backup against hand-computed trees."""

from __future__ import annotations

import math

import pytest

from cnnkit.games.mcts import Node, backup, puct_score, run_mcts, select_child, visit_policy


def test_puct_score_by_hand():
    child = Node(prior=0.5, player=0, visits=1, value_sum=0.6)
    # Q = 0.6; U = 1.5 * 0.5 * sqrt(4) / (1 + 1) = 0.75
    assert puct_score(4, child, 1.5) == pytest.approx(1.35)


def test_selection_trades_value_against_prior():
    root = Node(prior=1.0, player=-1)
    root.children = {0: Node(prior=0.6, player=0, visits=2, value_sum=1.0), 1: Node(prior=0.4, player=0)}
    # c = 1: A = 0.5 + 0.6 * sqrt(2) / 3 = 0.783, B = 0.4 * sqrt(2) = 0.566 -> A
    assert select_child(root, 1.0)[0] == 0
    # c = 2: A = 0.5 + 1.2 * sqrt(2) / 3 = 1.066, B = 0.8 * sqrt(2) = 1.131 -> B
    assert select_child(root, 2.0)[0] == 1


def test_first_selection_follows_the_priors():
    # All children unvisited: Q = 0, so the prior alone decides (parent count floored at 1); with sqrt(0)
    # the U term would vanish and the lowest id, action 0, would be chosen.
    node = Node(prior=1.0, player=-1)
    node.children = {0: Node(prior=0.2, player=0), 1: Node(prior=0.8, player=0)}
    assert select_child(node, 1.5)[0] == 1


def test_backup_adds_the_value_for_the_player_who_chose():
    path = [Node(prior=1, player=0), Node(prior=1, player=1), Node(prior=1, player=0)]
    backup(path, 0.8, leaf_player=1)
    assert [n.value_sum for n in path] == [-0.8, 0.8, -0.8]
    assert [n.visits for n in path] == [1, 1, 1]


class _TwoMoves:
    """Player 0 picks 0 (wins at once) or 1 (loses at once)."""

    def __init__(self, history: tuple[int, ...] = ()) -> None:
        self.history = history

    def clone(self) -> _TwoMoves:
        return _TwoMoves(self.history)

    def apply_action(self, a: int) -> None:
        self.history = (*self.history, a)

    def is_terminal(self) -> bool:
        return bool(self.history)

    def returns(self) -> list[float]:
        return [1.0, -1.0] if self.history == (0,) else [-1.0, 1.0]

    def current_player(self) -> int:
        return 0

    def legal_actions(self) -> list[int]:
        return [0, 1]


def test_search_on_a_hand_computed_tree():
    def uniform(state):
        return {0: 0.5, 1: 0.5}, 0.0

    # Sim 1: scores tie (U = 1.5 * 0.5 * 1 / 1 each), the lower id 0: a win, W0 = 1.
    # Sim 2: child 0: 1 + 0.75 / 2 = 1.375 > child 1: 0.75 -> 0 again. Sim 3: 1 + 0.75 * sqrt(2) / 3 = 1.354
    # > 0.75 * sqrt(2) = 1.061 -> 0. Sim 4: 1 + 0.75 * sqrt(3) / 4 = 1.325 > 0.75 * sqrt(3) = 1.299 -> 0.
    # Sim 5: 1 + 0.75 * 2 / 5 = 1.3 < 0.75 * 2 = 1.5 -> 1 (a loss): W1 = -1.
    root = run_mcts(_TwoMoves(), uniform, simulations=5, c_puct=1.5)
    assert root.children[0].visits == 4 and root.children[0].q == 1.0
    assert root.children[1].visits == 1 and root.children[1].q == -1.0
    assert list(visit_policy(root, 2, temperature=0)) == [1.0, 0.0]
    assert visit_policy(root, 2, temperature=1.0) == pytest.approx([0.8, 0.2])
    assert math.isclose(sum(visit_policy(root, 2, temperature=0.5)), 1.0)


def test_search_finds_a_winning_move_in_tic_tac_toe():
    pyspiel = pytest.importorskip("pyspiel")
    game = pyspiel.load_game("tic_tac_toe")
    state = game.new_initial_state()
    for a in (0, 3, 1, 4):  # x on 0, 1; o on 3, 4: x to move wins at 2
        state.apply_action(a)

    def uniform(s):
        legal = s.legal_actions()
        return {a: 1 / len(legal) for a in legal}, 0.0

    root = run_mcts(state, uniform, simulations=200, c_puct=1.5)
    assert max(root.children, key=lambda a: root.children[a].visits) == 2
