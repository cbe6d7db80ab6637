import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models import model_info
from cnnkit.models.tcn import tcn

from ._beyond2d_harness import check_model, n_params


def _conv_params(c_in: int, c_out: int, k: int, weight_norm: bool) -> int:
    # weight (or its direction v) + bias, + one magnitude g per output channel under weight norm
    return c_out * c_in * k + c_out + (c_out if weight_norm else 0)


def test_param_count_sequential_mnist_setting():
    # Bai et al. 2018, Sec. 5: 8 levels x 25 channels, k = 7, weight norm; 1x1 shortcut in block 1 only.
    hand = _conv_params(1, 25, 7, True) + _conv_params(25, 25, 7, True) + (25 * 1 + 25)
    hand += 7 * 2 * _conv_params(25, 25, 7, True)
    hand += 25 * 10 + 10
    assert hand == 66_910  # the paper's Table 1 reports "70K" for this task
    assert n_params(tcn()) == hand == model_info("tcn")["num_params"]
    plain = tcn(weight_norm=False)
    assert n_params(plain) == hand - 16 * 25


def test_forward_backward_and_split():
    torch.manual_seed(0)
    check_model(tcn(num_channels=(6, 6, 6), kernel_size=3, p=0.0), torch.randn(2, 1, 40), (2, 10))


def test_causal_future_inputs_do_not_change_past_outputs():
    torch.manual_seed(0)
    model = tcn(num_channels=(5, 5, 5), kernel_size=3).eval()
    x = torch.randn(1, 1, 30)
    y = x.clone()
    y[..., 20:] = torch.randn(1, 1, 10)
    fa, fb = model.forward_features(x), model.forward_features(y)
    torch.testing.assert_close(fa[..., :20], fb[..., :20])
    assert not torch.allclose(fa[..., 20:], fb[..., 20:])


def test_receptive_field_formula():
    # 1 + 2 (k - 1)(2^L - 1) steps; the gradient of the last output never reaches further back.
    from cnnkit.analysis import summarize

    torch.manual_seed(0)
    k, levels, steps = 3, 3, 40
    rf = 1 + 2 * (k - 1) * (2**levels - 1)  # 29
    model = tcn(num_channels=(4,) * levels, kernel_size=k).eval().double()
    row = [r for r in summarize(model, (1, steps)).layers if r.name == f"blocks.{levels - 1}.relu"][0]
    assert row.receptive_field[0]["size"] == rf
    x = torch.randn(1, 1, steps, dtype=torch.float64, requires_grad=True)
    model.forward_features(x)[0, :, -1].sum().backward()
    nz = torch.nonzero(x.grad[0, 0]).flatten()
    assert int(nz.min()) >= steps - rf and int(nz.max()) == steps - 1


def test_validation():
    with pytest.raises(ConfigError, match="Expected 0 <= p < 1"):
        tcn(p=1.0)
    with pytest.raises(ConfigError, match="at least one level"):
        tcn(num_channels=())
