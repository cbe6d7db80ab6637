"""The generic registry: lookups, suggestions, duplicates, metadata."""

from __future__ import annotations

import pytest

from cnnkit.errors import UnknownNameError
from cnnkit.layers._registry import snake_case
from cnnkit.registry import Registry


def test_register_get_info() -> None:
    reg: Registry[object] = Registry("widget")

    @reg.register(year=1998)
    def lenet5() -> None: ...

    assert reg.get("lenet5") is lenet5
    assert reg.info("lenet5") == {"year": 1998, "name": "lenet5"}
    assert "lenet5" in reg and len(reg) == 1 and reg.names("len*") == ["lenet5"]


def test_dash_and_underscore_are_interchangeable() -> None:
    reg: Registry[int] = Registry("dataset")
    reg.add("fashion-mnist", 1)
    assert reg.get("fashion_mnist") == 1
    assert reg.info("fashion_mnist")["name"] == "fashion-mnist"


def test_canonical_is_the_registered_spelling() -> None:
    reg: Registry[int] = Registry("dataset")
    reg.add("fashion-mnist", 1)
    reg.add("mobilenet_v1", 2)
    assert reg.canonical("fashion_mnist") == reg.canonical("fashion-mnist") == "fashion-mnist"
    assert reg.canonical("mobilenet-v1") == "mobilenet_v1"
    with pytest.raises(UnknownNameError, match=r"Unknown dataset 'fashion_mnist2'; did you mean 'fashion-mnist'"):
        reg.canonical("fashion_mnist2")
    with pytest.raises(UnknownNameError, match=r"Unknown dataset 3"):
        reg.canonical(3)  # type: ignore[arg-type]


def test_unknown_name_suggests() -> None:
    reg: Registry[int] = Registry("model")
    reg.add("resnet18", 1)
    reg.add("resnet50", 2)
    with pytest.raises(UnknownNameError, match=r"Unknown model 'resnet19'; did you mean 'resnet18'"):
        reg.get("resnet19")
    with pytest.raises(UnknownNameError, match=r"registered models: resnet18, resnet50"):
        reg.get("zzz")


def test_duplicate_raises() -> None:
    reg: Registry[int] = Registry("layer")
    reg.add("a", 1)
    with pytest.raises(ValueError, match="Duplicate layer name 'a'"):
        reg.add("a", 2)


@pytest.mark.parametrize(
    ("cls", "name"),
    [
        ("Conv2d", "conv2d"),
        ("MaxPool2d", "max_pool2d"),
        ("MixedPool2d", "mixed_pool2d"),
        ("BatchNorm2d", "batch_norm2d"),
        ("ReLU", "relu"),
        ("LeakyReLU", "leaky_relu"),
        ("RoIPool", "roi_pool"),
        ("GlobalAvgPool2d", "global_avg_pool2d"),
        ("DepthwiseSeparableConv2d", "depthwise_separable_conv2d"),
        ("ConvTranspose2d", "conv_transpose2d"),
    ],
)
def test_snake_case(cls: str, name: str) -> None:
    assert snake_case(cls) == name
