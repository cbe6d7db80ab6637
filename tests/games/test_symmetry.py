"""Board symmetries against OpenSpiel: replaying a game's moves through a symmetry's action map must give
the transformed board (the game engine, not this module, is the oracle)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit.games.symmetry import augment, game_symmetries

pyspiel = pytest.importorskip("pyspiel")


def _facts(game):
    from cnnkit.games.openspiel import game_facts

    return game_facts(game)


def _obs(state, shape):
    return torch.tensor(np.asarray(state.observation_tensor(0), dtype=np.float32).reshape(shape))


@pytest.mark.parametrize("name, count", [("tic_tac_toe", 8), ("connect_four", 2), ("go(board_size=5)", 8), ("checkers", 1)])
def test_symmetries_match_the_game_engine(name, count):
    game = pyspiel.load_game(name)
    facts = _facts(game)
    syms = game_symmetries(game, facts)
    assert len(syms) == count and syms[0].name == "identity"
    assert torch.equal(syms[0].source, torch.arange(facts["num_actions"]))
    shape = game.observation_tensor_shape()
    rng = np.random.RandomState(0)
    for sym in syms:
        assert sorted(sym.source.tolist()) == list(range(facts["num_actions"]))  # a permutation
        new_id = torch.argsort(sym.source)  # old action a becomes new_id[a]
        for _ in range(5):
            state, mapped = game.new_initial_state(), game.new_initial_state()
            for _ in range(rng.randint(1, 12)):
                if state.is_terminal():
                    break
                a = int(rng.choice(state.legal_actions()))
                legal_mapped = sorted(int(new_id[b]) for b in state.legal_actions())
                assert legal_mapped == sorted(mapped.legal_actions())
                state.apply_action(a)
                mapped.apply_action(int(new_id[a]))
                assert torch.equal(sym.planes(_obs(state, shape)), _obs(mapped, shape))


def test_augment_moves_the_policy_with_the_board():
    game = pyspiel.load_game("tic_tac_toe")
    syms = game_symmetries(game, _facts(game))
    x = torch.zeros(64, 1, 3, 3)
    pi = torch.zeros(64, 9)
    x[:, 0, 0, 1] = 1.0  # one marked cell (id 1) ...
    pi[:, 1] = 1.0  # ... which the target also puts all its mass on
    gx, gpi = augment(x, pi, syms, torch.Generator().manual_seed(0))
    cell = gx[:, 0].reshape(64, 9).argmax(1)
    assert torch.equal(gpi.argmax(1), cell)  # the target follows the cell wherever it went
    assert set(cell.tolist()) == {1, 3, 5, 7}  # an edge cell maps onto the four edge cells
    assert torch.equal(x[:, 0, 0, 1], torch.ones(64))  # the inputs were not changed in place


def test_augment_draws_every_symmetry_about_equally():
    game = pyspiel.load_game("tic_tac_toe")
    syms = game_symmetries(game, _facts(game))
    x = torch.arange(9.0).reshape(1, 1, 3, 3).expand(8000, 1, 3, 3)
    gx, _ = augment(x, torch.zeros(8000, 9), syms, torch.Generator().manual_seed(1))
    keys = [tuple(s.planes(x[0]).flatten().tolist()) for s in syms]
    counts = np.array([sum(tuple(r.flatten().tolist()) == k for r in gx) for k in keys])
    # chi-square, 7 degrees of freedom: 24.3 is the 0.999 quantile
    assert ((counts - 1000) ** 2 / 1000).sum() < 24.3
