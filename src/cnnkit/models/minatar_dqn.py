"""The MinAtar Q-network (Young & Tian 2019): one 3x3 convolution over the 10x10 game grid, then 128 units."""

from __future__ import annotations

from torch import nn

from .._checks import check_int
from ._common import FeatureHeadModel
from ._registry import register_model

__all__ = ["MinAtarDQN", "dqn_minatar"]


class MinAtarDQN(FeatureHeadModel):
    """MinAtar's DQN: ``(B, C, 10, 10)`` -> 16@3x3/1 -> ReLU -> 128 -> ReLU -> one Q-value per action.

    Args:
        num_actions: Outputs (MinAtar's full action set has 6).
        in_channels: Game channels (Breakout and Asterix 4, Space Invaders 6, Freeway 7, Seaquest 10).
        grid: Side of the square game grid (10 in MinAtar).

    Shape:
        Input ``(B, in_channels, grid, grid)`` (0/1 floats); output ``(B, num_actions)``.

    Example:
        >>> import torch
        >>> dqn_minatar(num_actions=6, in_channels=4)(torch.zeros(2, 4, 10, 10)).shape
        torch.Size([2, 6])

    Reference:
        K. Young and T. Tian, "MinAtar: An Atari-Inspired Testbed for Thorough and Reproducible
        Reinforcement Learning Experiments", arXiv:1903.03176, 2019, Sec. 4 ("a single convolutional layer
        with 16 3x3 filters with stride 1, followed by a fully connected hidden layer with 128 units").

    Deviations:
        None in the network (the paper's convolution has no padding: 10x10 -> 8x8).
    """

    def __init__(self, *, num_actions: int = 6, in_channels: int = 4, grid: int = 10) -> None:
        super().__init__()
        check_int(num_actions, "num_actions")
        check_int(in_channels, "in_channels")
        check_int(grid, "grid", 3)
        side = grid - 2  # 3x3, stride 1, no padding
        self.features = nn.Sequential(nn.Conv2d(in_channels, 16, 3), nn.ReLU(), nn.Flatten())  # (B, 16*8*8)
        self.head = nn.Sequential(nn.Linear(16 * side * side, 128), nn.ReLU(), nn.Linear(128, num_actions))
        self.input_shape = (in_channels, grid, grid)
        self.num_actions = num_actions


@register_model(
    paper="Young & Tian 2019, MinAtar, arXiv:1903.03176, Sec. 4",
    year=2019,
    input_size=(4, 10, 10),
    # conv 4*16*9 + 16 = 592; fc 1024*128 + 128 = 131,200; out 128*6 + 6 = 774.
    num_params=132_566,
    task="reinforcement",
    gradcam_layer="features.0",
)
def dqn_minatar(*, num_actions: int = 6, in_channels: int = 4, grid: int = 10) -> MinAtarDQN:
    """MinAtar's Q-network (6 actions, 4 channels: 132,566 parameters). See :class:`MinAtarDQN`."""
    return MinAtarDQN(num_actions=num_actions, in_channels=in_channels, grid=grid)
