"""Tests for the airbench-style network (cnnkit.models.airbench) and the Fashion-MNIST recipes that use it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import cnnkit.models.airbench  # noqa: F401  (registers airbench_fmnist; models/__init__ may not import it yet)
from cnnkit.errors import ConfigError
from cnnkit.models._registry import create_model, model_info
from cnnkit.models.airbench import (
    AirbenchNet,
    ConvGroup,
    FrozenScaleBatchNorm2d,
    airbench_fmnist,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FAST_STEM = {"widths": (32, 64, 128), "whiten_kernel_size": 4, "whiten_stride": 2, "whiten_padding": 1}


def _hand_count(widths: tuple[int, int, int], c: int = 1, k: int = 2, classes: int = 10) -> int:
    """Parameters by hand: whitening conv (weights + bias), per group two bias-free 3x3 convs and two BNs
    (gamma + beta), a bias-free linear head."""
    w_in = 2 * c * k * k
    n = w_in * c * k * k + w_in
    prev = w_in
    for w in widths:
        n += prev * w * 9 + 2 * w + w * w * 9 + 2 * w
        prev = w
    return n + prev * classes


def test_registered_with_metadata() -> None:
    info = model_info("airbench_fmnist")
    assert "2404.00498" in info["paper"] and info["year"] == 2024
    assert info["input_size"] == (1, 28, 28)
    model = create_model("airbench-fmnist")  # '-' and '_' are interchangeable
    assert isinstance(model, AirbenchNet)
    assert model.input_shape == (1, 28, 28)


@pytest.mark.parametrize(
    "kwargs",
    [{}, FAST_STEM, {"widths": (8, 16, 16), "in_channels": 3, "num_classes": 7, "image_size": 32}],
)
def test_parameter_count_matches_hand_count(kwargs: dict) -> None:
    model = AirbenchNet(**kwargs)
    expected = _hand_count(
        tuple(kwargs.get("widths", (64, 128, 128))),
        c=kwargs.get("in_channels", 1),
        k=kwargs.get("whiten_kernel_size", 2),
        classes=kwargs.get("num_classes", 10),
    )
    assert sum(p.numel() for p in model.parameters()) == expected
    if not kwargs:
        assert model_info("airbench_fmnist")["num_params"] == expected == 560_168


@pytest.mark.parametrize(
    ("kwargs", "feature_hw"),
    [({}, 3), (FAST_STEM, 1), ({"widths": (8, 16, 16), "in_channels": 3, "image_size": 32}, 3)],
)
def test_shapes_and_head(kwargs: dict, feature_hw: int) -> None:
    torch.manual_seed(0)
    model = AirbenchNet(**kwargs).eval()
    c, h, w = model.input_shape
    x = torch.randn(2, c, h, w)
    feats = model.forward_features(x)
    assert feats.shape == (2, model.widths[-1], feature_hw, feature_hw)
    # Head = global max-pool, bias-free linear, fixed temperature; recomputed here from torch primitives.
    expected = F.linear(feats.amax(dim=(2, 3)), model.head.weight) * model.scaling_factor
    torch.testing.assert_close(model(x), expected)
    assert model(x).shape == (2, 10)


def test_init_from_data_whitens_patches() -> None:
    torch.manual_seed(0)
    # Strongly correlated pixels (a smoothed random field), far from white.
    noise = torch.randn(64, 1, 30, 30)
    images = F.avg_pool2d(noise, 3, stride=1) * 3 + 0.5
    model = AirbenchNet(whiten_kernel_size=2)
    model.init_from_data(images, eps=1e-12)
    w = model.whiten.weight
    half = w.shape[0] // 2
    torch.testing.assert_close(w[half:], -w[:half])  # each direction and its negation
    z = F.conv2d(images, w[:half])  # (N, 4, H', W'), no bias
    z = z.permute(0, 2, 3, 1).reshape(-1, half).double()
    second_moment = z.T @ z / z.shape[0]
    torch.testing.assert_close(second_moment, torch.eye(half, dtype=torch.float64), atol=1e-4, rtol=0)
    # Before the init the same conv was nowhere near white.
    fresh = AirbenchNet(whiten_kernel_size=2)
    z0 = F.conv2d(images, fresh.whiten.weight[:half]).permute(0, 2, 3, 1).reshape(-1, half).double()
    assert (z0.T @ z0 / z0.shape[0] - torch.eye(half, dtype=torch.float64)).abs().max() > 0.1


def test_init_from_data_eps_shrinks_small_directions() -> None:
    # eps regularizes: a direction with eigenvalue lambda gets output variance lambda / (lambda + eps).
    torch.manual_seed(1)
    images = torch.randn(32, 1, 10, 10) * 0.01  # patch eigenvalues ~1e-4
    model = AirbenchNet(whiten_kernel_size=2, image_size=10 + 7)
    model.init_from_data(images, eps=1e-4)
    z = F.conv2d(images, model.whiten.weight[:4]).permute(0, 2, 3, 1).reshape(-1, 4).double()
    variances = torch.linalg.eigvalsh(z.T @ z / z.shape[0])
    assert 0.3 < variances.min() and variances.max() < 0.7


def test_init_from_data_rejects_wrong_channels() -> None:
    with pytest.raises(ConfigError, match=r"Expected images of shape \(N, 1, H, W\)"):
        AirbenchNet().init_from_data(torch.randn(4, 3, 28, 28))


def test_frozen_parameters_and_gradients() -> None:
    torch.manual_seed(0)
    model = AirbenchNet(**FAST_STEM)
    model.init_from_data(torch.randn(16, 1, 28, 28))
    frozen_whiten = model.whiten.weight.detach().clone()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    F.cross_entropy(model(torch.randn(8, 1, 28, 28)), torch.arange(8)).backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert name == "whiten.weight" or name.endswith(("norm1.weight", "norm2.weight")), name
    opt.step()
    torch.testing.assert_close(model.whiten.weight, frozen_whiten)
    for m in model.modules():
        if isinstance(m, FrozenScaleBatchNorm2d):
            assert not m.weight.requires_grad
            torch.testing.assert_close(m.weight, torch.ones_like(m.weight))


def test_conv_groups_start_as_dirac() -> None:
    group = ConvGroup(4, 6)
    w = group.conv2.weight
    identity = torch.zeros_like(w)
    for i in range(6):
        identity[i, i, 1, 1] = 1.0
    torch.testing.assert_close(w, identity)
    x = torch.randn(2, 6, 5, 5)
    torch.testing.assert_close(group.conv2(x), x)  # passes its input through at init
    assert torch.equal(group.conv1.weight[:4, :, 1, 1], torch.eye(4))


def test_eval_is_deterministic_and_train_updates_bn_stats() -> None:
    torch.manual_seed(0)
    model = AirbenchNet(**FAST_STEM)
    x = torch.randn(4, 1, 28, 28)
    model.eval()
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
    model.train()
    before = model.layers[0].norm1.running_mean.clone()
    model(x)
    assert not torch.equal(before, model.layers[0].norm1.running_mean)
    assert model.layers[0].norm1.momentum == pytest.approx(0.4) and model.layers[0].norm1.eps == 1e-12


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"widths": (64, 128)}, "Expected widths to be three positive integers"),
        ({"widths": (64, 0, 128)}, "Expected widths to be three positive integers"),
        ({"num_classes": 0}, "Expected num_classes to be an integer >= 1"),
        ({"whiten_stride": 0}, "Expected whiten_stride to be an integer >= 1"),
        ({"whiten_padding": -1}, "Expected whiten_padding to be an integer >= 0"),
        ({"image_size": 8}, "Expected the whitening conv to leave >= 8 pixels"),
        ({"scaling_factor": 0.0}, "Expected scaling_factor > 0"),
    ],
)
def test_argument_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        AirbenchNet(**kwargs)


def test_batchnorm_momentum_validation() -> None:
    with pytest.raises(ConfigError, match=r"Expected 0 < momentum <= 1. Received: momentum=1.5"):
        FrozenScaleBatchNorm2d(4, momentum=1.5)


def test_bf16_channels_last_forward_matches_fp32() -> None:
    torch.manual_seed(0)
    model = AirbenchNet(**FAST_STEM).eval()
    x = torch.randn(8, 1, 28, 28)
    ref = model(x)
    cl = model.to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = cl(x.contiguous(memory_format=torch.channels_last)).float()
    torch.testing.assert_close(out, ref, atol=0.05, rtol=0.05)


@pytest.mark.parametrize("name", ["fashion-mnist-fast.yaml", "fashion-mnist-best.yaml"])
def test_recipes_validate_and_build(name: str) -> None:
    from cnnkit.config import load_config
    from cnnkit.models.build import build_model

    cfg = load_config(CONFIGS / name)
    assert cfg.data.name == "fashion-mnist"
    model = build_model(cfg.model.as_dict(), num_classes=10)
    assert model.input_shape == (1, 28, 28)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    # The recipe's speed depends on these; a silent change would make the benchmarks lie.
    assert cfg.train.precision == "bf16" and cfg.train.channels_last
    assert cfg.optim.name == "muon" and cfg.optim.nesterov
    assert cfg.optim.bias_lr_scale == 64


def test_trainer_calls_init_from_data() -> None:
    """The training engine hands the model a batch of training images before the first step."""
    from cnnkit.data import InMemoryLoader
    from cnnkit.train import Trainer

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(64, 1, 28, 28, generator=g) * 255).to(torch.uint8)
    labels = torch.randint(0, 10, (64,), generator=g)
    loader = InMemoryLoader(images, labels, batch_size=32, shuffle=True, mean=[0.5], std=[0.29], seed=0)
    model = airbench_fmnist(widths=(8, 16, 16))
    before = model.whiten.weight.detach().clone()
    cfg = {"train": {"epochs": 1, "precision": "bf16", "channels_last": True}, "optim": {"lr": 0.1, "nesterov": True}}
    Trainer(model, train_loader=loader, cfg=cfg, quiet=True).fit()
    after = model.whiten.weight.detach()
    assert not torch.equal(before, after)
    half = after.shape[0] // 2
    torch.testing.assert_close(after[half:], -after[:half])


def test_small_channels_last_input_takes_nchw_path_with_same_result() -> None:
    torch.manual_seed(0)
    group = ConvGroup(8, 16).eval()
    seen: list[bool] = []
    group.conv1.register_forward_pre_hook(lambda mod, args: seen.append(args[0].is_contiguous()))
    x = torch.randn(2, 8, 9, 9)
    ref = group(x)
    out = group(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref)
    assert seen == [True, True]  # conv1 saw NCHW both times
    assert out.is_contiguous(memory_format=torch.channels_last)  # the caller's format is kept
    wide = ConvGroup(32, 16).eval()
    wide_seen: list[bool] = []
    wide.conv1.register_forward_pre_hook(lambda mod, args: wide_seen.append(args[0].is_contiguous()))
    wide(torch.randn(2, 32, 9, 9).contiguous(memory_format=torch.channels_last))
    assert wide_seen == [False]  # 32 channels stay channels-last
