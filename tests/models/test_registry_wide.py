"""The registry-wide model tests, in one place, so a newly registered model is tested for free (timm's pattern).

For every name in ``list_models()``: complete metadata; the parameter count at default arguments equals the
registered (published or hand-computed) count, built on the meta device so 138M-parameter nets cost nothing;
and forward + backward at a small setting with finite gradients, eval determinism and
``forward_head(forward_features(x)) == forward(x)``. A model without a small setting below fails the suite.

The 2-D image classifiers (``IMAGE_ZOO``) are held to more: the default-size forward shape and a spatial
Grad-CAM layer, ``num_classes`` / ``in_channels`` arguments and their validation, non-zero gradients on
every parameter, dropout making training stochastic, and (``-m slow``) forward/backward at full size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from cnnkit.errors import ConfigError, UnknownNameError
from cnnkit.models import create_model, list_models, model_info
from cnnkit.models.vgg import VGG, VGG_CONFIGS

# name -> (builder kwargs for a small, fast instance, input shape without batch, input dtype)
SMALL: dict[str, tuple[dict[str, Any], tuple[int, ...], torch.dtype]] = {
    "lenet5": ({}, (1, 32, 32), torch.float32),
    "alexnet": ({"num_classes": 10}, (3, 67, 67), torch.float32),
    "vgg11": ({"num_classes": 10}, (3, 32, 32), torch.float32),
    "vgg16": ({"num_classes": 10}, (3, 32, 32), torch.float32),
    "nin": ({}, (3, 16, 16), torch.float32),
    "googlenet": ({"num_classes": 10}, (3, 80, 80), torch.float32),
    "resnet18": ({"num_classes": 10}, (3, 32, 32), torch.float32),
    "resnet34": ({"num_classes": 10}, (3, 32, 32), torch.float32),
    "resnet50": ({"num_classes": 10}, (3, 32, 32), torch.float32),
    "resnet20": ({}, (3, 16, 16), torch.float32),
    "resnet56": ({}, (3, 16, 16), torch.float32),
    "mobilenet_v1": ({"width_multiplier": 0.25, "num_classes": 10}, (3, 64, 64), torch.float32),
    "tdnn": ({}, (16, 15), torch.float32),
    "tcn": ({"num_channels": (4, 4)}, (1, 32), torch.float32),
    "textcnn": ({"vocab_size": 50, "embed_dim": 8}, (12,), torch.long),
    "charcnn": ({"vocab_size": 71, "seq_len": 130, "num_classes": 3}, (130,), torch.long),
    "c3d": ({"variant": "small"}, None, torch.float32),  # type: ignore[dict-item]  # input from metadata
    "two_stream": ({"variant": "small", "num_classes": 4}, None, torch.float32),  # type: ignore[dict-item]
    "cnn_lstm": ({"num_classes": 4}, None, torch.float32),  # type: ignore[dict-item]
    "single_frame": ({"num_classes": 4}, None, torch.float32),  # type: ignore[dict-item]
    "dqn": ({}, (4, 84, 84), torch.float32),
    "dqn_minatar": ({}, (4, 10, 10), torch.float32),
    "alphazero_resnet": ({"width": 8, "blocks": 1}, (3, 6, 7), torch.float32),
    "blondie24": ({}, (5, 8, 8), torch.float32),
    "unet": ({"base_width": 2, "depth": 2, "padding": "same"}, (1, 32, 32), torch.float32),
    "fcn": ({"num_classes": 3, "width_divisor": 16, "hidden_features": 8}, (3, 64, 64), torch.float32),
    "segnet": ({"num_classes": 3, "depth": 2, "width_divisor": 16}, (3, 16, 16), torch.float32),
    "dcgan_generator": ({"base_width": 2}, (100, 1, 1), torch.float32),
    "airbench_fmnist": ({}, (1, 28, 28), torch.float32),
    "mnist1d_cnn": ({"channels": 4}, (1, 40), torch.float32),
    "srcnn": ({"window": 12}, (1, 12), torch.float32),
    "fcn1d": ({"num_classes": 3, "in_channels": 2}, (2, 24), torch.float32),
    "resnet1d": ({"num_classes": 3, "in_channels": 2}, (2, 24), torch.float32),
    "inception_time": ({"num_classes": 3, "in_channels": 2, "depth": 3, "filters": 4, "kernel_size": 8}, (2, 24), torch.float32),
    "convnextv2_atto": ({"num_classes": 10}, (3, 32, 32), torch.float32),
    "convnextv2_fmnist": ({}, (1, 28, 28), torch.float32),
    "fcmae": ({"input_size": (8, 8)}, (1, 8, 8), torch.float32),
    "dcgan": ({"base_width": 4, "fid_width": 4}, (1, 28, 28), torch.float32),
    "dcgan_discriminator": ({"base_width": 4}, (3, 64, 64), torch.float32),
    "faster_rcnn": ({"num_classes": 3, "representation": 16}, (3, 32, 32), torch.float32),
    "faster_rcnn_spp": ({"num_classes": 3, "representation": 16}, (3, 32, 32), torch.float32),
}

REQUIRED_META = ("paper", "year", "input_size", "num_params", "task")


def _params(model: nn.Module) -> int:
    # Published counts include frozen parameters (airbench's whitening conv and BN weights).
    return sum(p.numel() for p in model.parameters())


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def test_every_registered_model_has_a_small_setting() -> None:
    missing = sorted(set(list_models()) - set(SMALL))
    assert not missing, f"add a small setting for {missing} to SMALL in this file"


@pytest.mark.parametrize("name", list_models())
def test_metadata_and_published_parameter_count(name: str) -> None:
    info = model_info(name)
    for key in REQUIRED_META:
        assert info.get(key) is not None, f"{name}: metadata lacks {key}"
    assert 1989 <= info["year"] <= 2026
    with torch.device("meta"):
        model = create_model(name)
    assert _params(model) == info["num_params"]
    assert tuple(model.input_shape) == tuple(info["input_size"])


@pytest.mark.parametrize("name", list_models())
def test_small_forward_backward_and_feature_head_split(name: str) -> None:
    kwargs, shape, dtype = SMALL[name]
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    if shape is None:
        shape = tuple(model.input_shape)
    if dtype == torch.long:
        x = torch.randint(0, kwargs["vocab_size"], (2, *shape))
    else:
        x = torch.rand(2, *shape)
    init: Callable[[torch.Tensor], None] | None = getattr(model, "init_from_data", None)
    if init is not None:
        init(torch.randn(64, *shape))
    model.train()
    out = model(x)
    outs = out if isinstance(out, tuple) else (out,)  # GoogLeNet's auxiliary heads train too
    sum(o.float().square().mean() for o in outs).backward()
    reached = model_info(name).get("forward_params")  # a GAN module's forward is its discriminator
    for pname, p in model.named_parameters():
        if p.requires_grad and (reached is None or pname.startswith(reached)):
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}: no finite gradient for {pname}"
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
        split = model.forward_head(model.forward_features(x))
    # Models with several outputs (FCMAE's reconstruction and mask) are compared output by output.
    a, b, split = (o if isinstance(o, tuple) else (o,) for o in (a, b, split))
    assert all(torch.equal(u, v) for u, v in zip(a, b)), f"{name}: eval mode is not deterministic"
    assert all(torch.allclose(u, v, atol=1e-6) for u, v in zip(split, a)), f"{name}: forward_head(forward_features(x)) != forward(x)"


# ------------------------------------------------------------------ the 2-D image-classification zoo

# The 2-D image-classification models of issue 4 (conftest.py imports their modules).
IMAGE_ZOO: tuple[str, ...] = (
    "lenet5",
    "alexnet",
    "vgg11",
    "vgg16",
    "nin",
    "googlenet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet20",
    "resnet56",
    "mobilenet_v1",
)


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _mini_vgg(name: str) -> Callable[[], nn.Module]:
    # Same layout as the registered VGG (every conv/pool of Table 1), 1/16 of the widths: the real
    # VGG-16 needs ~5 s just to initialise 138M parameters on a busy 2-core machine.
    cfg = [v if v == "M" else max(1, int(v) // 16) for v in VGG_CONFIGS[name]]
    return lambda: VGG(cfg, num_classes=1000, hidden_features=32)


# name -> (small input (C, H, W) for forward/backward, factory of the model used at that size).
_SMALL: dict[str, tuple[tuple[int, int, int], Callable[[], nn.Module]]] = {
    "lenet5": ((1, 32, 32), lambda: create_model("lenet5")),
    "alexnet": ((3, 67, 67), lambda: create_model("alexnet")),
    "vgg11": ((3, 32, 32), _mini_vgg("vgg11")),
    "vgg16": ((3, 32, 32), _mini_vgg("vgg16")),
    "nin": ((3, 16, 16), lambda: create_model("nin")),
    "googlenet": ((3, 80, 80), lambda: create_model("googlenet")),
    "resnet18": ((3, 32, 32), lambda: create_model("resnet18")),
    "resnet34": ((3, 32, 32), lambda: create_model("resnet34")),
    "resnet50": ((3, 32, 32), lambda: create_model("resnet50")),
    "resnet20": ((3, 16, 16), lambda: create_model("resnet20")),
    "resnet56": ((3, 16, 16), lambda: create_model("resnet56")),
    "mobilenet_v1": ((3, 64, 64), lambda: create_model("mobilenet_v1", width_multiplier=0.25)),
}


def _logits(out: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def test_every_image_model_is_registered_and_covered() -> None:
    registered = set(list_models())
    assert set(IMAGE_ZOO) <= registered
    assert set(_SMALL) == set(IMAGE_ZOO)


@pytest.mark.parametrize("name", IMAGE_ZOO)
def test_metadata_complete(name: str) -> None:
    info = model_info(name)
    assert info["name"] == name
    assert isinstance(info["paper"], str) and info["paper"]
    assert 1980 < info["year"] < 2030
    assert len(info["input_size"]) == 3
    assert info["task"] == "classification"
    assert isinstance(info["num_params"], int) and info["num_params"] > 0
    assert isinstance(info["gradcam_layer"], str) and info["gradcam_layer"]


@pytest.mark.parametrize("name", IMAGE_ZOO)
def test_default_build_on_meta(name: str) -> None:
    """Parameter count == metadata; default-size forward shape; ``input_shape``; Grad-CAM layer is 4-D."""
    info = model_info(name)
    with torch.device("meta"):
        model = create_model(name)
    assert _n_params(model) == info["num_params"]
    assert model.input_shape == tuple(info["input_size"])
    seen: list[torch.Size] = []
    layer = model.get_submodule(info["gradcam_layer"])
    handle = layer.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    model.eval()
    out = model(torch.empty(2, *info["input_size"], device="meta"))
    handle.remove()
    assert out.shape == (2, model.num_classes)
    assert len(seen) == 1 and len(seen[0]) == 4
    assert seen[0][-1] > 1 and seen[0][-2] > 1, f"Grad-CAM layer gives a {tuple(seen[0])} map"


@pytest.mark.parametrize("name", IMAGE_ZOO)
def test_num_classes_and_in_channels(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name, num_classes=7, in_channels=2)
    c, h, w = model_info(name)["input_size"]
    assert model.input_shape == (2, h, w)
    assert model.eval()(torch.empty(1, 2, h, w, device="meta")).shape == (1, 7)


@pytest.mark.parametrize("name", IMAGE_ZOO)
@pytest.mark.parametrize("bad", [{"num_classes": 0}, {"in_channels": 0}, {"num_classes": 2.5}])
def test_invalid_arguments_raise(name: str, bad: dict) -> None:
    key = next(iter(bad))
    with pytest.raises(ConfigError, match=f"Expected .*Received: {key}="):
        create_model(name, **bad)


def test_unknown_model_suggests() -> None:
    with pytest.raises(UnknownNameError, match="resnet18"):
        create_model("resnet_18x")


@pytest.fixture(scope="module", params=IMAGE_ZOO)
def small(request: pytest.FixtureRequest) -> tuple[str, nn.Module, torch.Tensor]:
    """One model per name, built once and shared by the tests below (pytest groups them by name)."""
    name = request.param
    shape, factory = _SMALL[name]
    torch.manual_seed(0)
    model = factory()
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    return name, model, x


def test_forward_backward_finite_grads(small: tuple[str, nn.Module, torch.Tensor]) -> None:
    name, model, x = small
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(x)
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        assert o.shape == (x.shape[0], model.num_classes)
    sum(o.float().square().mean() for o in outs).backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name}: no gradient for {pname}"
            assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
            assert p.grad.abs().sum() > 0, f"{name}: all-zero gradient for {pname}"


def test_eval_deterministic_and_head_of_features(small: tuple[str, nn.Module, torch.Tensor]) -> None:
    name, model, x = small
    model.eval()
    with torch.no_grad():
        a = model(x)
        b = model(x)
        c = model.forward_head(model.forward_features(x))
    assert isinstance(a, torch.Tensor), f"{name}: eval mode must return logits only"
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c, rtol=0, atol=0)
    assert torch.isfinite(a).all()


def test_train_mode_is_stochastic_where_dropout(small: tuple[str, nn.Module, torch.Tensor]) -> None:
    """Models with dropout differ between two training passes; the others agree (BN uses batch stats)."""
    name, model, x = small
    has_dropout = any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())
    model.train()
    with torch.no_grad():
        torch.manual_seed(0)
        a = _logits(model(x))
        torch.manual_seed(1)
        b = _logits(model(x))
    assert (not torch.equal(a, b)) == has_dropout


@pytest.mark.slow
@pytest.mark.parametrize("name", IMAGE_ZOO)
def test_full_size_forward_backward(name: str) -> None:
    """The registered model at its default arguments and input size, for real."""
    info = model_info(name)
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.randn(1 if info["num_params"] > 50_000_000 else 2, *info["input_size"])
    model.train()
    out = model(x)
    sum(o.float().square().mean() for o in (out if isinstance(out, tuple) else (out,))).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    model.eval()
    with torch.no_grad():
        a, c = model(x), model.forward_head(model.forward_features(x))
    assert a.shape == (x.shape[0], model.num_classes)
    torch.testing.assert_close(a, c, rtol=0, atol=0)
