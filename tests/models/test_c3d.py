import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models import model_info
from cnnkit.models.c3d import c3d

from ._beyond2d_harness import check_model, n_params


def test_param_count_from_fig3():
    # Tran et al. 2015, Fig. 3: 3x3x3 convs 64, 128, 256x2, 512x2, 512x2; fc6/fc7 4096; 487 classes.
    widths = [3, 64, 128, 256, 256, 512, 512, 512, 512]
    conv = sum(c_in * c_out * 27 + c_out for c_in, c_out in zip(widths, widths[1:]))
    fc = (512 * 1 * 4 * 4 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 487 + 487)
    with torch.device("meta"):  # 80M parameters: count without allocating them
        model = c3d()
    assert n_params(model) == conv + fc == 79_991_015 == model_info("c3d")["num_params"]
    assert model.head[0].in_features == 8192  # 512 x 1 x 4 x 4 after pool5


def test_small_variant_forward_backward_and_split():
    torch.manual_seed(0)
    model = c3d(variant="small", num_classes=7)
    assert model.input_shape == (3, 16, 32, 32)
    check_model(model, torch.randn(1, 3, 16, 32, 32), (1, 7))


def test_input_size_sizes_fc6():
    model = c3d(variant="small", input_size=(8, 64, 64), num_classes=3)
    # 8x64x64 -> pool1 8x32x32 -> 4x16x16 -> 2x8x8 -> 1x4x4 -> pool5 (ceil) 1x2x2
    assert model.head[0].in_features == 128 * 1 * 2 * 2
    assert model(torch.randn(1, 3, 8, 64, 64)).shape == (1, 3)


def test_validation():
    with pytest.raises(ConfigError, match="variant"):
        c3d(variant="tiny")
    with pytest.raises(ConfigError, match="input_size"):
        c3d(input_size=(16, 112))


def test_batch_norm_option_and_small_clips():
    model = c3d(variant="small", input_size=(8, 32, 32), in_channels=1, num_classes=4, batch_norm=True)
    assert sum(isinstance(m, torch.nn.BatchNorm3d) for m in model.modules()) == 8
    check_model(model, torch.randn(2, 1, 8, 32, 32), (2, 4))
    with torch.device("meta"):  # the probe run by `cnnkit train` builds it on the meta device
        c3d(variant="small", input_size=(8, 32, 32), batch_norm=True)
    with pytest.raises(ConfigError, match="at least 8 frames of 16x16"):
        c3d(variant="small", input_size=(4, 16, 16))
