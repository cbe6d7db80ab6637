"""Blondie24's board evaluator (Chellapilla & Fogel 1999-2001), in its convolutional form."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_int
from ._common import FeatureHeadModel
from ._registry import register_model

__all__ = ["Blondie24Net", "blondie24"]


class _SignedBoard(nn.Module):
    """Piece planes -> one signed board: +1 own man, +K own king, -1/-K the opponent's (K evolves)."""

    def __init__(self) -> None:
        super().__init__()
        self.king_value = nn.Parameter(torch.tensor(2.0))  # K = 2 initially (Chellapilla & Fogel 2001, Sec. III)

    def forward(self, x: Tensor) -> Tensor:
        own = x[:, 0] + self.king_value * x[:, 1]
        opp = x[:, 2] + self.king_value * x[:, 3]
        return (own - opp).unsqueeze(1)  # (B, 1, 8, 8)


class _Subsquares(nn.Module):
    """All k x k subsquares, k = 3..8, each through tanh: 36 + 25 + 16 + 9 + 4 + 1 = 91 units."""

    def __init__(self, side: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(1, 1, k) for k in range(3, side + 1))

    def forward(self, b: Tensor) -> Tensor:
        return torch.cat([torch.tanh(c(b)).flatten(1) for c in self.convs], dim=1)


class _Evaluator(nn.Module):
    """91 -> 40 -> 10 -> 1 tanh units; the piece differential (sum of the signed board) joins the output."""

    def __init__(self, units: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(units, 40), nn.Tanh(), nn.Linear(40, 10), nn.Tanh(), nn.Linear(10, 1))
        self.piece_weight = nn.Parameter(torch.tensor(0.0))

    def forward(self, feats: tuple[Tensor, Tensor]) -> Tensor:
        sub, board = feats
        return torch.tanh(self.mlp(sub) + self.piece_weight * board.sum(dim=(1, 2, 3)).unsqueeze(1))  # (B, 1)


class _Features(nn.Module):
    def __init__(self, side: int) -> None:
        super().__init__()
        self.board = _SignedBoard()
        self.subsquares = _Subsquares(side)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b = self.board(x)
        return self.subsquares(b), b


class Blondie24Net(FeatureHeadModel):
    """Checkers evaluator: the signed board -> 91 subsquare units -> 40 -> 10 -> tanh value for player 0.

    Args:
        in_channels: Input planes; the first four are own men, own kings, opponent men, opponent kings
            (OpenSpiel's checkers observation has five; the fifth, empty squares, is not read).
        side: Board side (8).

    Shape:
        Input ``(B, in_channels, side, side)``; output ``(B, 1)`` in ``[-1, 1]``.

    Example:
        >>> import torch
        >>> blondie24()(torch.zeros(2, 5, 8, 8)).shape
        torch.Size([2, 1])

    Reference:
        K. Chellapilla and D. B. Fogel, "Evolving an expert checkers playing program without using human
        expertise", IEEE Trans. Evolutionary Computation 5(4), 2001, Sec. III (the 91 subsquare nodes, the
        40- and 10-node layers, the king value K and the piece differential fed to the output);
        D. B. Fogel, "Blondie24: Playing at the Edge of AI", 2002.

    Deviations:
        Each subsquare size shares one set of weights across positions (a convolution, 205 weights) where
        the paper gave each of the 91 subsquares its own (5,046 weights in all); the board is read on all 64
        squares (dark squares only carry pieces), not the 32 playable ones.
    """

    def __init__(self, *, in_channels: int = 5, side: int = 8) -> None:
        super().__init__()
        check_int(in_channels, "in_channels", 4)
        check_int(side, "side", 3)
        self.features = _Features(side)
        units = sum((side - k + 1) ** 2 for k in range(3, side + 1))
        self.head = _Evaluator(units)
        self.input_shape = (in_channels, side, side)


@register_model(
    paper="Chellapilla & Fogel 2001, Evolving an expert checkers playing program, IEEE TEC 5(4), Sec. III",
    year=2001,
    input_size=(5, 8, 8),
    # K 1; convs sum(k*k + 1, k=3..8) = 205; 91*40 + 40 = 3,680; 40*10 + 10 = 410; 10 + 1 = 11; piece weight 1.
    num_params=4_308,
    task="games",
    gradcam_layer=None,
)
def blondie24(*, in_channels: int = 5, side: int = 8) -> Blondie24Net:
    """Blondie24's evaluator with convolutional subsquares (4,308 parameters). See :class:`Blondie24Net`."""
    return Blondie24Net(in_channels=in_channels, side=side)
