"""The board symmetries of a game, for data augmentation of self-play positions (Silver et al. 2017).

AlphaGo Zero (Silver et al. 2017, Methods, "Domain knowledge" 4 and "Self-play training pipeline") used
that the rules of Go are invariant under the eight rotations and reflections of the board: each position
in a training minibatch is transformed by one of them drawn at random, its policy target with it. The same
holds for tic-tac-toe (8) and Connect Four (the left-right mirror only: gravity breaks the rest). Each
symmetry is a transform of the ``(..., H, W)`` planes and the matching permutation of OpenSpiel's action
ids: cell ``r * W + c`` for tic-tac-toe and Go (Go's pass, the last id, maps to itself), the column for
Connect Four; these encodings are checked against OpenSpiel in the tests. Games not listed have only the
identity (checkers' move ids do not follow a board transform).

Deviations:
    AlphaGo Zero also evaluated each MCTS leaf under a random symmetry; the search here does not (AlphaZero,
    2018, dropped both uses, for games that lack them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["Symmetry", "game_symmetries", "augment"]

_DIHEDRAL = ("tic_tac_toe", "go")
_MIRROR = ("connect_four",)


@dataclass(frozen=True)
class Symmetry:
    """``planes(x)`` transforms ``(..., H, W)``; the policy target moves with ``pi[..., source]``
    (entry ``b`` of the new target is entry ``source[b]`` of the old one)."""

    name: str
    planes: Callable[[Tensor], Tensor]
    source: Tensor


def _dihedral(k: int, flip: bool) -> Callable[[Tensor], Tensor]:
    def apply(x: Tensor) -> Tensor:
        y = torch.rot90(x, k, dims=(-2, -1))
        return y.flip(-1) if flip else y

    return apply


def game_symmetries(game: Any, facts: dict[str, Any]) -> list[Symmetry]:
    """The identity first, then the game's other board symmetries (see the module docstring)."""
    rows, cols = facts["board"]
    n = facts["num_actions"]
    short = game.get_type().short_name
    ops: list[tuple[str, Callable[[Tensor], Tensor]]] = [("identity", _dihedral(0, False))]
    if short in _DIHEDRAL and rows == cols:
        ops += [("+".join([f"rot{90 * k}"] * bool(k) + ["mirror"] * f), _dihedral(k, f)) for f in (False, True)
                for k in range(4) if (k, f) != (0, False)]
    elif short in _MIRROR:
        ops.append(("mirror", _dihedral(0, True)))
    out: list[Symmetry] = []
    for name, planes in ops:
        if short in _MIRROR:
            source = planes(torch.arange(cols).expand(rows, cols))[0]
        else:
            cells = planes(torch.arange(rows * cols).reshape(rows, cols)).reshape(-1)
            source = torch.cat([cells, torch.arange(rows * cols, n)])  # non-cell ids (Go's pass) stay
        if len(source) != n:  # an encoding this module does not know: no augmentation rather than a wrong one
            return out[:1] or [Symmetry("identity", planes, torch.arange(n))]
        out.append(Symmetry(name, planes, source))
    return out


def augment(x: Tensor, pi: Tensor, symmetries: list[Symmetry], generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Each position of the batch ``x (B, C, H, W)``, ``pi (B, A)`` under one symmetry drawn uniformly."""
    if len(symmetries) == 1:
        return x, pi
    pick = torch.randint(0, len(symmetries), (len(x),), generator=generator)
    x, pi = x.clone(), pi.clone()
    for i, sym in enumerate(symmetries[1:], start=1):
        rows = (pick == i).nonzero().flatten()
        if len(rows):
            x[rows] = sym.planes(x[rows])
            pi[rows] = pi[rows][:, sym.source]
    return x, pi
