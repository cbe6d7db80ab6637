"""ResNets against He et al. (2016): hand counts from Table 1 and Sec. 4.2, shortcut options A and B."""

from __future__ import annotations

import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models.resnet import CifarResNet, ResNet, resnet18, resnet20, resnet34, resnet50, resnet56


def _conv_bn(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + 2 * c_out  # bias-free conv followed by BN (gamma, beta)


def _imagenet_count(blocks: tuple[int, ...], bottleneck: bool) -> int:
    """Table 1 of He et al.: conv1 7x7 64, stages conv2_x..conv5_x of 64/128/256/512, avg pool, fc 1000,
    projection shortcuts (option B) where the shape changes."""
    e = 4 if bottleneck else 1
    total = _conv_bn(3, 64, 7)
    c_in = 64
    for width, n in zip((64, 128, 256, 512), blocks, strict=True):
        for i in range(n):
            if bottleneck:
                total += _conv_bn(c_in, width, 1) + _conv_bn(width, width, 3) + _conv_bn(width, width * e, 1)
            else:
                total += _conv_bn(c_in, width, 3) + _conv_bn(width, width, 3)
            if i == 0 and c_in != width * e:
                total += _conv_bn(c_in, width * e, 1)
            c_in = width * e
    return total + c_in * 1000 + 1000


def _cifar_count(n: int, option: str) -> int:
    """Sec. 4.2: 3x3 conv 16, then 2n layers each on 32x32/16/8 maps with 16/32/64 filters, GAP, fc 10."""
    total = _conv_bn(3, 16, 3)
    c_in = 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += _conv_bn(c_in, width, 3) + _conv_bn(width, width, 3)
            if c_in != width and option == "B":
                total += _conv_bn(c_in, width, 1)
            c_in = width
    return total + 64 * 10 + 10


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("builder", "blocks", "bottleneck", "published"),
    [
        (resnet18, (2, 2, 2, 2), False, 11_689_512),
        (resnet34, (3, 4, 6, 3), False, 21_797_672),
        (resnet50, (3, 4, 6, 3), True, 25_557_032),
    ],
)
def test_imagenet_hand_count(builder, blocks: tuple[int, ...], bottleneck: bool, published: int) -> None:  # type: ignore[no-untyped-def]
    assert _imagenet_count(blocks, bottleneck) == published
    with torch.device("meta"):
        assert _params(builder()) == published


@pytest.mark.parametrize(("builder", "n"), [(resnet20, 3), (resnet56, 9)])
def test_cifar_hand_count(builder, n: int) -> None:  # type: ignore[no-untyped-def]
    # Table 6 reports 0.27M (ResNet-20) and 0.85M (ResNet-56); option A is the paper's choice for CIFAR.
    assert _params(builder()) == _cifar_count(n, "A")
    assert _params(builder(shortcut="B")) == _cifar_count(n, "B")
    assert (_cifar_count(3, "A"), _cifar_count(3, "B")) == (269_722, 272_474)
    assert (_cifar_count(9, "A"), _cifar_count(9, "B")) == (853_018, 855_770)
    assert 6 * n + 2 == sum(isinstance(m, torch.nn.Conv2d | torch.nn.Linear) for m in builder().modules())


def test_option_a_shortcut_is_zero_padded_subsampled_identity() -> None:
    model = resnet20()
    block = model.layer2[0]
    x = torch.randn(2, 16, 8, 8)
    short = block.downsample(x)
    assert short.shape == (2, 32, 4, 4)
    torch.testing.assert_close(short[:, :16], x[:, :, ::2, ::2])
    assert torch.all(short[:, 16:] == 0)
    assert sum(p.numel() for p in block.downsample.parameters()) == 0


def test_stage_shapes() -> None:
    with torch.device("meta"):
        model = resnet50()
        x = torch.empty(1, 3, 224, 224)
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        assert x.shape == (1, 64, 56, 56)
        for layer, shape in zip(
            (model.layer1, model.layer2, model.layer3, model.layer4),
            ((256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)),
            strict=True,
        ):
            x = layer(x)
            assert x.shape[1:] == shape
    cifar = resnet56()
    assert cifar.forward_features(torch.zeros(1, 3, 32, 32)).shape == (1, 64, 8, 8)


def test_bottleneck_stride_placement() -> None:
    with torch.device("meta"):
        paper, v15 = resnet50(), resnet50(stride_in_1x1=False)
    assert paper.layer2[0].conv1.stride == (2, 2) and paper.layer2[0].conv2.stride == (1, 1)
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)
    assert _params(paper) == _params(v15)


def test_invalid_depth_and_shortcut() -> None:
    with pytest.raises(ConfigError, match="Expected depth = 6n \\+ 2"):
        CifarResNet(depth=21)
    with pytest.raises(ConfigError, match="Received: shortcut='C'"):
        resnet20(shortcut="C")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Expected 4 stages"):
        ResNet(type(resnet18().layer1[0]), (2, 2, 2))
