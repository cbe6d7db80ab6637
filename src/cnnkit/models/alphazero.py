"""The AlphaGo Zero network (Silver et al. 2017): a residual tower with a policy head and a value head."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_int, to_pair
from ._common import FeatureHeadModel
from ._registry import register_model

__all__ = ["AlphaZeroNet", "alphazero_resnet"]


class _Residual(nn.Module):
    """conv 3x3 - BN - ReLU - conv 3x3 - BN, plus the input, then ReLU (Silver et al. 2017, Methods)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x + self.body(x))


class _Heads(nn.Module):
    """Policy head (conv 2@1x1 - BN - ReLU - FC to the moves) and value head (conv 1@1x1 - BN - ReLU -
    FC ``value_hidden`` - ReLU - FC 1 - tanh), concatenated as ``(B, num_actions + 1)``."""

    def __init__(self, width: int, cells: int, num_actions: int, value_hidden: int) -> None:
        super().__init__()
        self.policy = nn.Sequential(
            nn.Conv2d(width, 2, 1, bias=False), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * cells, num_actions)
        )
        self.value = nn.Sequential(
            nn.Conv2d(width, 1, 1, bias=False), nn.BatchNorm2d(1), nn.ReLU(), nn.Flatten(),
            nn.Linear(cells, value_hidden), nn.ReLU(), nn.Linear(value_hidden, 1), nn.Tanh(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.policy(x), self.value(x)], dim=1)


class AlphaZeroNet(FeatureHeadModel):
    """Residual policy/value network of AlphaGo Zero, sized by arguments for small boards.

    Args:
        in_channels: Input planes (OpenSpiel's observation tensor: 3 for tic-tac-toe and Connect Four).
        board: Board ``(rows, cols)`` (``(6, 7)`` for Connect Four).
        num_actions: Policy outputs (OpenSpiel's distinct actions: 7 for Connect Four).
        width: Filters per convolution (256 in the paper).
        blocks: Residual blocks (19 or 39 in the paper).
        value_hidden: Hidden units of the value head (256 in the paper).

    Shape:
        Input ``(B, in_channels, rows, cols)``; output ``(B, num_actions + 1)``: the policy logits, then the
        value in ``[-1, 1]`` (one tensor, so the run format and the registry harness treat it like any model).

    Example:
        >>> import torch
        >>> alphazero_resnet()(torch.zeros(2, 3, 6, 7)).shape
        torch.Size([2, 8])

    Reference:
        D. Silver et al., "Mastering the game of Go without human knowledge", Nature 550, 2017, Methods
        ("Neural network architecture"); D. Silver et al., "A general reinforcement learning algorithm that
        masters chess, shogi and Go through self-play", Science 362, 2018.

    Deviations:
        Width, depth and value-head size are arguments (defaults 32, 2 and 64, for a CPU); the policy is
        over OpenSpiel's action ids rather than Go's 362 points; the input is OpenSpiel's observation tensor
        for the player to move, not the paper's 17 history planes.
    """

    def __init__(
        self, *, in_channels: int = 3, board: int | tuple[int, int] = (6, 7), num_actions: int = 7,
        width: int = 32, blocks: int = 2, value_hidden: int = 64,
    ) -> None:
        super().__init__()
        rows, cols = to_pair(board, "board")
        check_int(in_channels, "in_channels")
        check_int(num_actions, "num_actions")
        check_int(width, "width")
        check_int(blocks, "blocks", 0)
        check_int(value_hidden, "value_hidden")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),  # (B, W, R, C)
            *[_Residual(width) for _ in range(blocks)],
        )
        self.head = _Heads(width, rows * cols, num_actions, value_hidden)
        self.input_shape = (in_channels, rows, cols)
        self.num_actions = num_actions


@register_model(
    paper="Silver et al. 2017, Mastering the game of Go without human knowledge, Nature 550, Methods",
    year=2017,
    input_size=(3, 6, 7),
    # stem 3*32*9 + 64 (BN) = 928; each block 2*(32*32*9 + 64) = 18,560 (x2); policy 32*2 + 4 + 84*7 + 7 = 663;
    # value 32 + 2 + 42*64 + 64 + 64 + 1 = 2,851.
    num_params=41_562,
    task="games",
    gradcam_layer="features.2",
)
def alphazero_resnet(
    *, in_channels: int = 3, board: int | tuple[int, int] = (6, 7), num_actions: int = 7,
    width: int = 32, blocks: int = 2, value_hidden: int = 64,
) -> AlphaZeroNet:
    """The AlphaGo Zero residual network at a CPU size (Connect Four defaults). See :class:`AlphaZeroNet`."""
    return AlphaZeroNet(
        in_channels=in_channels, board=board, num_actions=num_actions, width=width, blocks=blocks, value_hidden=value_hidden
    )
