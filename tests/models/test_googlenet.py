"""GoogLeNet against Table 1 of Szegedy et al. (2015): hand counts, output sizes, auxiliary heads."""

from __future__ import annotations

import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models.googlenet import GoogLeNetOutputs, Inception, googlenet

# Table 1, transcribed: name -> (output size, output depth, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5,
# pool proj, "params" column in K). The input depth of each module is the previous output depth.
TABLE_1 = {
    "3a": (28, 256, 64, 96, 128, 16, 32, 32, 159),
    "3b": (28, 480, 128, 128, 192, 32, 96, 64, 380),
    "4a": (14, 512, 192, 96, 208, 16, 48, 64, 364),
    "4b": (14, 512, 160, 112, 224, 24, 64, 64, 437),
    "4c": (14, 512, 128, 128, 256, 24, 64, 64, 463),
    "4d": (14, 528, 112, 144, 288, 32, 64, 64, 580),
    "4e": (14, 832, 256, 160, 320, 32, 128, 128, 840),
    "5a": (7, 832, 256, 160, 320, 32, 128, 128, 1072),
    "5b": (7, 1024, 384, 192, 384, 48, 128, 128, 1388),
}


def _conv(c_in: int, c_out: int, k: int) -> int:
    return c_out * c_in * k * k + c_out


def _inception_count(c_in: int, row: tuple[int, ...]) -> int:
    _, _, c1, r3, c3, r5, c5, pp, _ = row
    return (
        _conv(c_in, c1, 1)
        + _conv(c_in, r3, 1)
        + _conv(r3, c3, 3)
        + _conv(c_in, r5, 1)
        + _conv(r5, c5, 5)
        + _conv(c_in, pp, 1)
    )


def _hand_count_without_aux() -> int:
    total = _conv(3, 64, 7) + _conv(64, 64, 1) + _conv(64, 192, 3)  # conv1, conv2 reduce, conv2
    c_in = 192
    for row in TABLE_1.values():
        total += _inception_count(c_in, row)
        c_in = row[1]
    return total + 1024 * 1000 + 1000  # linear


def _aux_count(c_in: int) -> int:
    # Sec. 5: 1x1 conv 128, FC 1024 on 4x4x128, linear 1000.
    return _conv(c_in, 128, 1) + (4 * 4 * 128 * 1024 + 1024) + (1024 * 1000 + 1000)


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_hand_counts() -> None:
    assert _hand_count_without_aux() == 6_998_552
    assert _hand_count_without_aux() + _aux_count(512) + _aux_count(528) == 13_378_280
    with torch.device("meta"):
        assert _params(googlenet(aux_logits=False)) == 6_998_552
        assert _params(googlenet()) == 13_378_280


def test_inception_weights_near_table_params_column() -> None:
    # Table 1's "params" column counts weights only, in units of 1024, and is itself approximate
    # (the module counts below differ from it by up to 8%, e.g. 4c); a wrong branch width or a 3x3 in
    # place of a 5x5 would move 3a by ~10%.
    with torch.device("meta"):
        model = googlenet(aux_logits=False)
    for name, row in TABLE_1.items():
        module = model.features.get_submodule(f"inception{name}")
        weights = sum(p.numel() for n, p in module.named_parameters() if n.endswith("weight"))
        assert weights / 1024 == pytest.approx(row[-1], rel=0.08), name
    assert model.features.inception3a.branch3[1].conv.kernel_size == (5, 5)


def test_output_sizes_of_table_1() -> None:
    with torch.device("meta"):
        model = googlenet(aux_logits=False).eval()
    sizes: dict[str, tuple[int, ...]] = {}
    for name, m in model.features.named_children():
        m.register_forward_hook(lambda mod, i, o, name=name: sizes.__setitem__(name, tuple(o.shape[1:])))
    model(torch.empty(1, 3, 224, 224, device="meta"))
    assert sizes["conv1"] == (64, 112, 112)
    assert sizes["pool1"] == (64, 56, 56)
    assert sizes["conv2"] == (192, 56, 56)
    assert sizes["pool2"] == (192, 28, 28)
    for name, (size, depth, *_) in TABLE_1.items():
        assert sizes[f"inception{name}"] == (depth, size, size), name
    assert sizes["pool4"] == (832, 7, 7)


def test_auxiliary_outputs_only_in_training() -> None:
    torch.manual_seed(0)
    model = googlenet(num_classes=5)
    x = torch.randn(2, 3, 80, 80)  # 79x79 is the smallest size the auxiliary heads accept
    model.train()
    out = model(x)
    assert isinstance(out, GoogLeNetOutputs)
    assert [o.shape for o in out] == [torch.Size([2, 5])] * 3
    assert not torch.equal(out.aux1, out.aux2)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 5)
    # Without auxiliary classifiers, training mode returns plain logits too.
    plain = googlenet(num_classes=5, aux_logits=False).train()
    assert isinstance(plain(x), torch.Tensor)
    assert plain.aux1 is None and plain.aux2 is None


def test_aux_heads_read_4a_and_4d_at_4x4() -> None:
    with torch.device("meta"):
        model = googlenet().train()
    seen = {}
    model.aux1.conv.register_forward_hook(lambda m, i, o: seen.__setitem__("aux1", (tuple(i[0].shape), tuple(o.shape))))
    model.aux2.pool.register_forward_hook(lambda m, i, o: seen.__setitem__("aux2_in", tuple(i[0].shape)))
    model(torch.empty(1, 3, 224, 224, device="meta"))
    assert seen["aux1"] == ((1, 512, 4, 4), (1, 128, 4, 4))  # 14x14 -> avg-pool 5x5/3 -> 4x4
    assert seen["aux2_in"] == (1, 528, 14, 14)


def test_inception_concatenates_branches() -> None:
    block = Inception(8, 1, 2, 3, 2, 4, 5)
    assert block(torch.randn(1, 8, 6, 6)).shape == (1, 1 + 3 + 4 + 5, 6, 6)


def test_aux_heads_reject_too_small_maps() -> None:
    model = googlenet().train()
    with pytest.raises(ConfigError, match="at least 79x79.*aux_logits=False"):
        model(torch.zeros(1, 3, 77, 77))
