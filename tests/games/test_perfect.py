"""Scoring against perfect play: the solver on hand-solved tic-tac-toe positions, and (slow) the recipe's
self-play measurably moving the network towards perfect play against its own untrained start."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cnnkit.games.perfect import perfect_play, random_positions, solve

pyspiel = pytest.importorskip("pyspiel")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _state(game, moves):
    state = game.new_initial_state()
    for a in moves:
        state.apply_action(a)
    return state


def test_solve_by_hand():
    game = pyspiel.load_game("tic_tac_toe")
    # x on 0, 1; o on 3, 4; x to move: 2 wins at once; 6, 7 or 8 let o win at 5.
    best, moves = solve(game, _state(game, [0, 3, 1, 4]))
    assert best == 1.0 and moves[2] == 1.0
    assert all(moves[a] == -1.0 for a in (6, 7, 8)) and moves[5] > -1.0
    # The empty board is a draw with perfect play, and every first move keeps it one.
    best, moves = solve(game, game.new_initial_state())
    assert best == 0.0 and set(moves.values()) == {0.0}
    # x on 4, o on 1 (an edge): x can force a win.
    assert solve(game, _state(game, [4, 1]))[0] == 1.0


def test_random_positions_are_distinct_and_open():
    game = pyspiel.load_game("tic_tac_toe")
    positions = random_positions(game, 50, seed=3)
    assert len(positions) == 50 and len({str(s) for s in positions}) == 50
    assert not any(s.is_terminal() for s in positions)


@pytest.mark.slow
def test_self_play_moves_the_policy_towards_perfect_play(tmp_path):
    from cnnkit.cli import main
    from cnnkit.config import load_config
    from cnnkit.games.alphazero import build_game_network
    from cnnkit.runs import load_model

    run = tmp_path / "run"
    args = ["train", str(CONFIGS / "alphazero-tictactoe.yaml"), "--out", str(run), "--quiet",
            "--set", "task.iterations=15", "--set", "task.eval_games=0"]
    assert main(args) == 0
    loaded = load_model(run)
    meta = loaded.info["data_meta"]
    facts = {k: meta[k] for k in ("in_channels", "board", "num_actions")}
    untrained = dataclasses.replace(loaded, model=build_game_network(load_config(run / "config.yaml"), facts)[0].eval())
    game = pyspiel.load_game("tic_tac_toe")
    positions = random_positions(game, 200, seed=1)
    solved = [solve(game, s) for s in positions]
    after, before = perfect_play(loaded, positions, solved), perfect_play(untrained, positions, solved)
    # 200 positions: a binomial standard error of about 3.5 points, so 10 points is ~3 of them.
    assert after["policy"] > before["policy"] + 0.10, (before, after)
    assert after["value"] > before["value"], (before, after)
