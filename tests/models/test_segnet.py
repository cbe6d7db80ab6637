"""SegNet (Badrinarayanan et al. 2017): index unpooling puts values back where their maxima were."""

from __future__ import annotations

import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models import create_model, model_info
from cnnkit.models.segnet import SegNet


def test_parameter_count_matches_the_paper_size():
    with torch.device("meta"):
        n = sum(p.numel() for p in create_model("segnet").parameters())
    assert n == model_info("segnet")["num_params"]
    assert abs(n - 29.5e6) < 0.1e6  # the paper's 29.5M (Table 6)


def test_index_unpooling_returns_values_to_their_argmax():
    net = SegNet(num_classes=2, depth=1, width_divisor=64)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 0] = 5.0
    pooled, idx = net.pool(x)
    up = net.unpool(pooled, idx, output_size=x.shape)
    assert up[0, 0, 1, 0] == 5.0 and up.sum() == 5.0  # zeros elsewhere (Fig. 3)
    copy = SegNet(num_classes=2, depth=1, width_divisor=64, unpool="copy")
    assert torch.equal(copy.unpool(pooled)[0, 0, :2, :2], torch.full((2, 2), 5.0))


@pytest.mark.parametrize("unpool", ["indices", "copy"])
def test_shapes(unpool):
    net = create_model("segnet", num_classes=5, in_channels=1, depth=3, width_divisor=16, unpool=unpool)
    assert net(torch.randn(2, 1, 32, 24)).shape == (2, 5, 32, 24)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="multiples of 8"):
        create_model("segnet", depth=3, width_divisor=16)(torch.zeros(1, 3, 20, 20))
    with pytest.raises(ConfigError, match="Expected 1 <= depth"):
        SegNet(depth=6)
    with pytest.raises(ConfigError, match="Expected unpool"):
        SegNet(unpool="bilinear")
