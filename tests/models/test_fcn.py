"""FCN (Long et al. 2015): the convolutionized classifier reproduces the classifier, bilinear upsampling
matches torch's interpolation, skip variants start as their coarser parent, parameter hand count."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnkit.errors import ConfigError
from cnnkit.models import create_model, model_info
from cnnkit.models.fcn import FCN, bilinear_kernel, convolutionize
from cnnkit.models.vgg import VGG

TINY = [4, "M", 4, "M", 8, "M", 8, "M", 8, "M"]


def test_convolutionized_vgg_gives_the_classifier_logits():
    torch.manual_seed(0)
    vgg = VGG(TINY, num_classes=5, hidden_features=16).eval()  # narrow, but VGG-11's layout of pools
    features, head = convolutionize(vgg)
    head.eval()
    x = torch.randn(2, 3, 224, 224)
    # Sec. 3.1: at 224x224 the 7x7 fc6 window covers the whole 7x7 map: the centre of the score map is
    # the classifier's output.
    torch.testing.assert_close(head(features(x))[:, :, 3, 3], vgg(x), atol=1e-5, rtol=1e-5)
    assert head(features(torch.randn(1, 3, 320, 256))).shape == (1, 5, 10, 8)  # a coarse map on larger inputs


def test_bilinear_kernel_upsamples_like_torch_interpolate():
    y = torch.rand(1, 1, 6, 5)
    for f in (2, 4, 8):
        up = F.conv_transpose2d(y, bilinear_kernel(f)[None, None], stride=f, padding=f // 2)
        ref = F.interpolate(y, scale_factor=f, mode="bilinear", align_corners=False)
        assert up.shape == ref.shape
        m = f  # away from the border, where the transposed conv sees zeros and interpolate replicates
        torch.testing.assert_close(up[..., m:-m, m:-m], ref[..., m:-m, m:-m])


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_variants_shapes_and_initial_equivalence(variant):
    torch.manual_seed(1)
    net = FCN(VGG(TINY, num_classes=1, hidden_features=8), num_classes=3, variant=variant).eval()
    x = torch.randn(2, 3, 70, 45)  # not multiples of 32: padded, then cropped back
    assert net(x).shape == (2, 3, 70, 45)
    # Zero-initialised score layers: every variant starts out predicting zeros; give score_fr weights and
    # the skips still add zero, so 8s/16s equal 32s with the same score_fr up to learned-bilinear 2x steps.
    torch.nn.init.normal_(net.score_fr.weight)
    out = net(x)
    assert torch.isfinite(out).all() and out.abs().sum() > 0
    assert net.final_kernel.requires_grad is False and "final_kernel" not in dict(net.named_parameters())


def test_registered_fcn8s_parameter_count_and_small_build():
    with torch.device("meta"):
        assert sum(p.numel() for p in create_model("fcn").parameters()) == model_info("fcn")["num_params"] == 134_376_863
        n32 = sum(p.numel() for p in create_model("fcn", variant="32s").parameters())
    # 32s lacks the two skip scores and the two learned 2x upsamplings.
    assert n32 == 134_376_863 - 10_773 - 5_397 - 2 * 7_056
    net = create_model("fcn", num_classes=11, in_channels=1, width_divisor=16, hidden_features=16)
    assert net(torch.zeros(1, 1, 64, 64)).shape == (1, 11, 64, 64)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="Expected variant"):
        FCN(VGG(TINY, hidden_features=8), variant="4s")
    with pytest.raises(ConfigError, match="Expected backbone"):
        create_model("fcn", backbone="resnet18")
    with pytest.raises(ConfigError, match="5 max-pools"):
        FCN(VGG([4, "M", 4, "M"], hidden_features=8))
