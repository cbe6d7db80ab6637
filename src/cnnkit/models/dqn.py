"""Deep Q-network (Mnih et al. 2015): a CNN from stacked Atari frames to one Q-value per action."""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from ._common import FeatureHeadModel
from ._registry import register_model

__all__ = ["DQN", "dqn"]

# (out_channels, kernel, stride) per conv layer, then the hidden fully connected width.
_VARIANTS: dict[str, tuple[list[tuple[int, int, int]], int]] = {
    "mnih2015": ([(32, 8, 4), (64, 4, 2), (64, 3, 1)], 512),  # Nature 2015, Methods "Model architecture"
    "mnih2013": ([(16, 8, 4), (32, 4, 2)], 256),  # NIPS workshop 2013, Sec. 5
}


class DQN(FeatureHeadModel):
    """The Atari Q-network: 84x84x4 -> 32@8x8/4 -> 64@4x4/2 -> 64@3x3/1 -> 512 -> one output per action.

    Args:
        num_actions: Outputs, one Q-value per action (18 is the full Atari action set).
        in_channels: Stacked frames m (4).
        variant: ``"mnih2015"`` (Nature) or ``"mnih2013"`` (16@8x8/4 -> 32@4x4/2 -> 256).

    Shape:
        Input ``(B, in_channels, 84, 84)``; output ``(B, num_actions)``.

    Example:
        >>> import torch
        >>> dqn(num_actions=6)(torch.zeros(2, 4, 84, 84)).shape
        torch.Size([2, 6])

    Reference:
        V. Mnih et al., "Human-level control through deep reinforcement learning", Nature 518, 2015,
        Methods (Model architecture); V. Mnih et al., "Playing Atari with Deep Reinforcement Learning",
        arXiv:1312.5602, 2013, Sec. 5.

    Deviations:
        None in the network. Frame preprocessing (max over two frames, luminance, 84x84 rescale) belongs to
        the environment wrapper; inputs are expected already scaled to [0, 1].
    """

    def __init__(self, *, num_actions: int = 18, in_channels: int = 4, variant: str = "mnih2015") -> None:
        super().__init__()
        if variant not in _VARIANTS:
            raise ConfigError(f"Expected variant in {tuple(_VARIANTS)}. Received: variant={variant!r}")
        if num_actions < 1:
            raise ConfigError(f"Expected num_actions >= 1. Received: num_actions={num_actions}")
        convs, hidden = _VARIANTS[variant]
        layers: list[nn.Module] = []
        c, size = in_channels, 84
        for out, k, s in convs:
            layers += [nn.Conv2d(c, out, k, stride=s), nn.ReLU()]
            c, size = out, (size - k) // s + 1  # 84 -> 20 -> 9 -> 7 (2015); 84 -> 20 -> 9 (2013)
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(c * size * size, hidden), nn.ReLU(), nn.Linear(hidden, num_actions))
        self.input_shape = (in_channels, 84, 84)
        self.num_actions = num_actions


@register_model(
    paper="Mnih et al. 2015, Human-level control through deep reinforcement learning, Nature 518, Methods",
    year=2015,
    input_size=(4, 84, 84),
    num_params=1_693_362,
    task="reinforcement",
    gradcam_layer="features.4",
)
def dqn(*, num_actions: int = 18, in_channels: int = 4, variant: str = "mnih2015") -> DQN:
    """The Nature DQN (18 actions: 1,693,362 parameters). See :class:`DQN`."""
    return DQN(num_actions=num_actions, in_channels=in_channels, variant=variant)
