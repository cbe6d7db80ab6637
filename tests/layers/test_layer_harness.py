"""The shared layer harness, run on every case in ``_harness.CASES``; plus registry-wide checks."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

import cnnkit.layers as L
from cnnkit.layers import LAYERS, snake_case

from ._harness import CASES, Case

IDS = [c.id for c in CASES]


def _build(case: Case, seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(seed)
    module = case.make()
    return module, case.inputs()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_registered_under_its_name(case: Case) -> None:
    module, _ = _build(case)
    assert LAYERS.get(case.name) is type(module)
    assert snake_case(type(module).__name__) == case.name


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_output_shape(case: Case) -> None:
    module, inputs = _build(case)
    for mode in (True, False):
        assert module.train(mode)(*inputs).shape == case.out_shape


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_flow_to_input_and_parameters(case: Case) -> None:
    module, inputs = _build(case)
    x = inputs[0].requires_grad_()
    out = module.train()(*inputs)
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in module.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_repr_shows_hyperparameters(case: Case) -> None:
    module, _ = _build(case)
    text = repr(module)
    for piece in case.repr_has:
        assert piece in text, (piece, text)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_train_eval_behaviour(case: Case) -> None:
    module, inputs = _build(case)
    module.eval()
    first = module(*inputs)
    assert torch.equal(first, module(*inputs)), "evaluation must be deterministic"
    module.train()
    a, b = module(*inputs), module(*inputs)
    if case.random_in_training:
        assert not torch.equal(a, b), "training mode should draw fresh randomness each call"
    else:
        assert torch.equal(a, b)
        torch.testing.assert_close(a, first)


@pytest.mark.parametrize(("case", "call", "match"),
                         [(c, call, match) for c in CASES for call, match in c.bad_args],
                         ids=[f"{c.id}-{i}" for c in CASES for i in range(len(c.bad_args))])
def test_argument_errors(case: Case, call, match: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("case", [c for c in CASES if c.gradcheck], ids=[c.id for c in CASES if c.gradcheck])
def test_float64_gradcheck(case: Case) -> None:
    module, inputs = _build(case)
    module = module.double().eval()
    inputs = tuple(t.double() for t in inputs)
    x, rest = inputs[0].requires_grad_(), inputs[1:]
    # fast_mode checks random projections of the Jacobian (cheap); the layers with a hand-written
    # backward also get a full gradcheck on tiny inputs in their own test file.
    assert torch.autograd.gradcheck(lambda t: module(t, *rest), (x,), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bf16_autocast(case: Case) -> None:
    module, inputs = _build(case)
    module.eval()
    ref = module(*inputs)
    x = inputs[0].requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(*inputs)
    assert out.shape == ref.shape and torch.isfinite(out).all()
    scale = ref.abs().max().item() + 1e-3
    torch.testing.assert_close(out.float(), ref, atol=0.05 * scale, rtol=0.05)
    out.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


COMPILED = ["lp_pool2d", "mixed_pool2d", "softmax_pool2d", "stochastic_pool2d", "depthwise_separable_conv2d",
            "locally_connected2d", "global_response_norm", "roi_pool"]


# torch 2.13's Dynamo instantiates every custom autograd.Function it traces (LocallyConnected2d's) and
# so trips torch's own DeprecationWarning; nothing in cnnkit instantiates one.
@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
@pytest.mark.parametrize("case", [c for c in CASES if c.id in COMPILED], ids=[c.id for c in CASES if c.id in COMPILED])
def test_torch_compile_matches_eager(case: Case) -> None:
    # aot_eager runs Dynamo's tracing and AOTAutograd (graph capture, custom autograd.Function, backward
    # graph) without C++ code generation; the inductor run is the slow test below.
    torch._dynamo.reset()
    module, inputs = _build(case)
    module.eval()
    compiled = torch.compile(module, backend="aot_eager", fullgraph=case.name != "roi_pool")
    x = inputs[0].requires_grad_()
    out = compiled(*inputs)
    torch.testing.assert_close(out, module(*inputs))
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside torch's inductor/jit code
@pytest.mark.parametrize("name", ["lp_pool2d", "softmax_pool2d", "locally_connected2d"])
def test_torch_compile_inductor(name: str) -> None:
    torch._dynamo.reset()
    case = next(c for c in CASES if c.id == name)
    module, inputs = _build(case)
    compiled = torch.compile(module.eval())
    torch.testing.assert_close(compiled(*inputs), module(*inputs), atol=1e-5, rtol=1e-4)


def _ours() -> list[str]:
    return [n for n in LAYERS.names() if LAYERS.info(n).get("source") != "torch.nn"]


def test_every_registered_name_resolves_to_a_module_class() -> None:
    assert len(LAYERS) > 80
    for name in LAYERS.names():
        cls = LAYERS.get(name)
        assert inspect.isclass(cls) and issubclass(cls, nn.Module), name
        assert LAYERS.get(name.replace("_", "-")) is cls


def test_every_layer_of_ours_is_in_the_harness() -> None:
    assert set(_ours()) == {c.name for c in CASES}


def test_public_layer_classes_are_registered_under_snake_case() -> None:
    for name in L.__all__:
        obj = getattr(L, name)
        if inspect.isclass(obj) and issubclass(obj, nn.Module):
            assert LAYERS.get(snake_case(name)) is obj


@pytest.mark.parametrize("name", [
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "max_pool1d",
    "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool2d",
    "adaptive_max_pool2d", "batch_norm1d", "batch_norm2d", "batch_norm3d", "layer_norm", "group_norm",
    "local_response_norm", "relu", "leaky_relu", "prelu", "elu", "gelu", "silu", "tanh", "sigmoid", "softmax",
    "dropout", "dropout2d", "max_unpool2d", "linear", "flatten", "identity", "upsample", "zero_pad2d"])
def test_torch_builtins_registered(name: str) -> None:
    cls = LAYERS.get(name)
    assert cls.__module__.startswith("torch.nn")


def test_lp_pool2d_name_is_ours_and_torch_is_kept_apart() -> None:
    assert LAYERS.get("lp_pool2d") is L.LpPool2d
    assert LAYERS.get("torch_lp_pool2d") is nn.LPPool2d
    ones = torch.ones(1, 1, 2, 2)
    assert L.LpPool2d(2, 2)(ones).item() == pytest.approx(1.0)   # mean: article
    assert nn.LPPool2d(2, 2)(ones).item() == pytest.approx(2.0)  # sum: torch
