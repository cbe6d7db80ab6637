import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models import model_info
from cnnkit.models.unet import unet

from ._beyond2d_harness import check_model, n_params


def _conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


def _hand_count(base: int, in_ch: int, classes: int, up_k: int) -> int:
    w = [base * 2**i for i in range(5)]
    total, c = 0, in_ch
    for out in w:  # contracting path and bottleneck: two 3x3 convs each
        total += _conv(c, out, 3) + _conv(out, out, 3)
        c = out
    for hi, lo in zip(w[:0:-1], w[-2::-1]):  # up-conv halves channels; two 3x3 convs after the concat
        total += _conv(hi, lo, up_k) + _conv(2 * lo, lo, 3) + _conv(lo, lo, 3)
    return total + _conv(w[0], classes, 1)


def test_param_count_from_fig1():
    assert _hand_count(64, 1, 2, 2) == 31_030_658
    with torch.device("meta"):
        model = unet()
        resize = unet(upsample="resize_conv")
    assert n_params(model) == 31_030_658 == model_info("unet")["num_params"]
    assert n_params(resize) == _hand_count(64, 1, 2, 3)


def test_valid_padding_572_to_388():
    model = unet(base_width=2).eval()
    assert model.input_shape == (1, 572, 572)
    with torch.no_grad():
        assert model(torch.randn(1, 1, 572, 572)).shape == (1, 2, 388, 388)


@pytest.mark.parametrize("upsample", ["transpose", "resize_conv"])
def test_same_padding_forward_backward_and_split(upsample):
    torch.manual_seed(0)
    model = unet(base_width=2, depth=2, padding="same", upsample=upsample, num_classes=3, in_channels=2)
    check_model(model, torch.randn(2, 2, 16, 16), (2, 3, 16, 16))
    has_transpose = any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules())
    assert has_transpose == (upsample == "transpose")


def test_input_size_must_fit_every_pool():
    model = unet(base_width=2, depth=2, padding="same")
    with pytest.raises(ConfigError, match=r"even map size .* got \(9, 9\) before pool 2.*multiples of 4"):
        model(torch.randn(1, 1, 18, 18))
    valid = unet(base_width=2, depth=2)
    with pytest.raises(ConfigError, match=r"got \(65, 65\) before pool 2.*4 b \+ 12"):
        valid(torch.randn(1, 1, 142, 142))  # 142 -> 138 -> 69 -> 65: odd
    assert valid(torch.randn(1, 1, 4 * 8 + 12, 4 * 8 + 12)).shape[-1] == 4  # b = 8: 44 -> 4


def test_validation():
    with pytest.raises(ConfigError, match="upsample"):
        unet(upsample="bilinear")
    with pytest.raises(ConfigError, match="padding"):
        unet(padding="full")


def test_overlap_tile_mirrors_like_numpy_and_keeps_the_size():
    import numpy as np

    from cnnkit.models.unet import _mirror_pad

    x = torch.randn(1, 2, 5, 4)
    got = _mirror_pad(x, 9, 3, 11, 2)  # pads larger than the image: mirrored again, like numpy's reflect
    ref = np.pad(x.numpy(), ((0, 0), (0, 0), (11, 2), (9, 3)), mode="reflect")
    np.testing.assert_array_equal(got.numpy(), ref)
    torch.manual_seed(0)
    tiled = unet(base_width=2, depth=2, overlap_tile=True, num_classes=3).eval()
    plain = unet(base_width=2, depth=2, num_classes=3).eval()
    plain.load_state_dict(tiled.state_dict())
    img = torch.randn(1, 1, 64, 64)
    before, padded, offset = tiled.tile_padding(64)
    assert (before, padded, offset) == (20, 104, 0) and tiled.shrink() == 40
    with torch.no_grad():
        ref = plain(torch.nn.functional.pad(img, (20, 20, 20, 20), mode="reflect"))  # 104 -> 64
        assert torch.allclose(tiled(img), ref, atol=1e-6)
        assert tiled(torch.randn(2, 1, 37, 50)).shape == (2, 3, 37, 50)
    with pytest.raises(ConfigError, match="overlap_tile only with padding='valid'"):
        unet(padding="same", overlap_tile=True)


def test_valid_output_arithmetic_for_the_paper_tile():
    from cnnkit.models.unet import _valid_output_size

    assert _valid_output_size(572, 4) == 388 and unet(base_width=1).shrink() == 184


def test_training_memory_is_refused_in_one_line(monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_ACTIVATION_BYTES", str(2**30))
    model = unet(base_width=2, depth=2, padding="same").train()
    need = model.activation_bytes(64, 572, 572)
    assert need > 2**30
    with pytest.raises(ConfigError, match=r"at 572x572 with batch 64 needs about .* GiB .* lower data.batch_size"):
        model(torch.empty(64, 1, 572, 572))
    with torch.no_grad():  # inference keeps no activations for backward: not refused
        model.eval()
        assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 2, 32, 32)


def test_batch_norm_option():
    m = unet(base_width=2, depth=2, padding="same", batch_norm=True)
    assert sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules()) == 10
