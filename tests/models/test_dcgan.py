import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models import model_info
from cnnkit.models.dcgan import dcgan_generator

from ._beyond2d_harness import check_model, n_params


def test_param_count_from_fig1():
    # Radford et al. 2016, Fig. 1: z(100) -> 1024x4x4 -> 512x8x8 -> 256x16x16 -> 128x32x32 -> 3x64x64,
    # 4x4 kernels, no conv bias, batch norm (gamma, beta) after every layer but the output.
    widths = [1024, 512, 256, 128]
    hand = 100 * 1024 * 16 + 2 * 1024
    for c_in, c_out in zip(widths, widths[1:]):
        hand += c_in * c_out * 16 + 2 * c_out
    hand += 128 * 3 * 16
    with torch.device("meta"):
        model = dcgan_generator()
    assert n_params(model) == hand == 12_658_432 == model_info("dcgan_generator")["num_params"]


@pytest.mark.parametrize("upsample", ["transpose", "resize_conv"])
def test_forward_backward_and_split(upsample):
    torch.manual_seed(0)
    model = dcgan_generator(base_width=2, upsample=upsample)
    check_model(model, torch.randn(2, 100, 1, 1), (2, 3, 64, 64))
    with torch.no_grad():
        y = model.eval()(torch.randn(3, 100, 1, 1) * 10)
    assert y.abs().max() <= 1.0  # tanh output
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.head.modules()) == (upsample == "transpose")


def test_validation():
    with pytest.raises(ConfigError, match="upsample"):
        dcgan_generator(upsample="pixel_shuffle")
