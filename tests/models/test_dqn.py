import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models import model_info
from cnnkit.models.dqn import dqn

from ._beyond2d_harness import check_model, n_params


def test_published_param_count_18_actions():
    assert n_params(dqn()) == 1_693_362 == model_info("dqn")["num_params"]  # Mnih et al. 2015


def test_param_count_2013_variant_by_hand():
    # NIPS 2013: 16@8x8/4 -> 32@4x4/2 -> 256 -> actions; 84 -> 20 -> 9.
    hand = (4 * 16 * 64 + 16) + (16 * 32 * 16 + 32) + (32 * 9 * 9 * 256 + 256) + (256 * 6 + 6)
    assert n_params(dqn(variant="mnih2013", num_actions=6)) == hand


def test_map_sizes():
    model = dqn()
    x = torch.zeros(1, 4, 84, 84)
    sizes = [x.shape[-1] for x in _trace(model.features, x) if x.ndim == 4]
    assert sizes[::2] == [20, 9, 7]


def _trace(seq: torch.nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    outs = []
    for m in seq:
        x = m(x)
        outs.append(x)
    return outs


def test_forward_backward_and_split():
    torch.manual_seed(0)
    check_model(dqn(num_actions=5), torch.rand(2, 4, 84, 84), (2, 5))


def test_validation():
    with pytest.raises(ConfigError, match="variant"):
        dqn(variant="mnih2014")
