import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.layers import UpsampleConv2d
from cnnkit.models import model_info
from cnnkit.models.dcgan import dcgan, dcgan_discriminator, dcgan_generator, generator_plan

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


def test_discriminator_and_gan_module_counts_by_hand():
    # Discriminator, Sec. 3: 4x4 stride-2 convs 3->128->256->512->1024 (bias only on the first: the others
    # are followed by batch norm), then a 4x4 conv to one logit.
    hand = 3 * 128 * 16 + 128
    for c_in, c_out in ((128, 256), (256, 512), (512, 1024)):
        hand += c_in * c_out * 16 + 2 * c_out
    hand += 1024 * 16
    with torch.device("meta"):
        assert n_params(dcgan_discriminator()) == hand == model_info("dcgan_discriminator")["num_params"]
    # dcgan at 28x28 (7 * 2**2), ngf = ndf = 64, and the FID net (width 32, 10 classes).
    g = 100 * 128 * 49 + 2 * 128 + 128 * 64 * 16 + 2 * 64 + 64 * 1 * 16
    d = 1 * 64 * 16 + 64 + 64 * 128 * 16 + 2 * 128 + 128 * 49
    f = 9 * 32 + 2 * 32 + 9 * 32 * 64 + 2 * 64 + 9 * 64 * 128 + 2 * 128 + 128 * 10 + 10
    gan = dcgan()
    assert (n_params(gan.generator), n_params(gan.discriminator), n_params(gan.fid_net)) == (g, d, f)
    assert n_params(gan) == g + d + f == model_info("dcgan")["num_params"]


@pytest.mark.parametrize("upsample", ["transpose", "upsample_conv", "resize_conv"])
def test_forward_backward_and_split(upsample):
    torch.manual_seed(0)
    model = dcgan_generator(base_width=2, upsample=upsample)
    check_model(model, torch.randn(2, 100, 1, 1), (2, 3, 64, 64))
    with torch.no_grad():
        y = model.eval()(torch.randn(3, 100, 1, 1) * 10)
    assert y.abs().max() <= 1.0  # tanh output
    transposed = [m for m in model.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    # The projection of z is a transposed conv in both modes; the up-sampling steps differ.
    assert len(transposed) == (5 if upsample == "transpose" else 1)
    assert any(isinstance(m, UpsampleConv2d) for m in model.modules()) == (upsample != "transpose")


@pytest.mark.parametrize(("size", "plan"), [(64, (4, 4)), (32, (4, 3)), (28, (7, 2)), (8, (4, 1)), (48, (6, 3))])
def test_sizes_the_generator_makes(size, plan):
    assert generator_plan(size) == plan
    gan = dcgan(image_size=size, in_channels=3, base_width=2, fid_width=2)
    assert gan.generate(2).shape == (2, 3, size, size)
    assert gan(torch.randn(2, 3, size, size)).shape == (2,)


@pytest.mark.parametrize("size", [30, 9, 4, 60 * 2, [28, 32]])
def test_a_size_the_layers_cannot_make_is_one_line(size):
    with pytest.raises(ConfigError, match="cannot make|square") as info:
        dcgan(image_size=size)
    assert "\n" not in str(info.value)


def test_normal_0_002_initialization():
    torch.manual_seed(0)
    gen = dcgan_generator(base_width=32)
    w = torch.cat([m.weight.detach().flatten() for m in gen.modules() if isinstance(m, (torch.nn.ConvTranspose2d, torch.nn.Conv2d))])
    assert abs(float(w.mean())) < 1e-3 and abs(float(w.std()) - 0.02) < 5e-4
    bn = torch.cat([m.weight.detach() for m in gen.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(float(bn.mean()) - 1.0) < 0.01 and abs(float(bn.std()) - 0.02) < 0.005


def test_validation():
    with pytest.raises(ConfigError, match="upsample"):
        dcgan_generator(upsample="pixel_shuffle")
