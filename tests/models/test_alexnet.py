"""AlexNet against Krizhevsky et al. (2012): hand-counted parameters, map sizes of Figure 2, LRN Sec. 3.3."""

from __future__ import annotations

import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models.alexnet import alexnet


def _conv(c_in: int, c_out: int, k: int, groups: int = 1) -> int:
    return c_out * (c_in // groups) * k * k + c_out


def _fc(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_krizhevsky2012_hand_count() -> None:
    # Figure 2: conv2, conv4, conv5 see only the maps on their own GPU (groups=2); conv3 and the FC layers
    # see both halves.
    expected = (
        _conv(3, 96, 11)
        + _conv(96, 256, 5, groups=2)
        + _conv(256, 384, 3)
        + _conv(384, 384, 3, groups=2)
        + _conv(384, 256, 3, groups=2)
        + _fc(256 * 6 * 6, 4096)
        + _fc(4096, 4096)
        + _fc(4096, 1000)
    )
    assert expected == 60_965_224
    with torch.device("meta"):
        assert _params(alexnet()) == expected


def test_single_tower_hand_count() -> None:
    expected = (
        _conv(3, 64, 11) + _conv(64, 192, 5) + _conv(192, 384, 3) + _conv(384, 256, 3) + _conv(256, 256, 3)
        + _fc(9216, 4096) + _fc(4096, 4096) + _fc(4096, 1000)
    )  # fmt: skip
    assert expected == 61_100_840
    with torch.device("meta"):
        model = alexnet(variant="single_tower")
    assert _params(model) == expected
    assert model.input_shape == (3, 224, 224)


def test_feature_map_sizes_of_figure_2() -> None:
    with torch.device("meta"):
        model = alexnet()
    sizes: dict[str, tuple[int, ...]] = {}
    for name, m in model.features.named_children():
        m.register_forward_hook(lambda mod, i, o, name=name: sizes.__setitem__(name, tuple(o.shape[1:])))
    model(torch.empty(1, 3, 227, 227, device="meta"))
    assert sizes["conv1"] == (96, 55, 55)
    assert sizes["pool1"] == (96, 27, 27)
    assert sizes["conv2"] == (256, 27, 27)
    assert sizes["pool2"] == (256, 13, 13)
    assert sizes["conv3"] == sizes["conv4"] == (384, 13, 13)
    assert sizes["conv5"] == (256, 13, 13)
    assert sizes["pool5"] == (256, 6, 6)


def test_lrn_is_the_papers_formula() -> None:
    # Sec. 3.3: b_i = a_i / (k + alpha * sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a_j^2)^beta, k=2, n=5,
    # alpha=1e-4, beta=0.75 -- alpha NOT divided by n.
    with torch.device("meta"):
        lrn = alexnet().features.norm1  # parameter-free, so it runs on CPU tensors
    torch.manual_seed(0)
    a = torch.randn(1, 8, 3, 3) * 20
    expected = torch.empty_like(a)
    n_maps = a.shape[1]
    for i in range(n_maps):
        lo, hi = max(0, i - 2), min(n_maps - 1, i + 2)
        s = (a[:, lo : hi + 1] ** 2).sum(1)
        expected[:, i] = a[:, i] / (2.0 + 1e-4 * s) ** 0.75
    torch.testing.assert_close(lrn(a), expected)


def test_paper_initialisation() -> None:
    torch.manual_seed(0)
    model = alexnet()
    f, c = model.features, model.classifier
    for m in (f.conv2, f.conv4, f.conv5, c.fc6, c.fc7):
        assert torch.all(m.bias == 1.0)
    for m in (f.conv1, f.conv3, c.fc8):
        assert torch.all(m.bias == 0.0)
    assert abs(c.fc6.weight.std().item() - 0.01) < 1e-4


def test_dropout_follows_first_two_fc_layers() -> None:
    with torch.device("meta"):
        names = [n for n, _ in alexnet().classifier.named_children()]
    assert names == ["fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8"]


def test_unknown_variant_raises() -> None:
    with pytest.raises(ConfigError, match="Received: variant='torchvision'"):
        alexnet(variant="torchvision")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Expected 0 <= dropout < 1. Received: dropout=1.0"):
        alexnet(dropout=1.0)
