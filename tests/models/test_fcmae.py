"""FCMAE: the mask generator (seeded statistical tests), shapes, eval determinism, and tensor names that
line up with the ConvNeXt V2 classifier for --init-from."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from cnnkit.errors import ConfigError
from cnnkit.models import model_info
from cnnkit.models.convnextv2 import convnextv2_fmnist
from cnnkit.models.fcmae import fcmae, random_patch_mask
from cnnkit.train.transfer import load_matching_weights

from ._beyond2d_harness import n_params


@pytest.mark.parametrize(("h", "w", "ratio"), [(7, 7, 0.6), (2, 2, 0.6), (4, 5, 0.75), (3, 3, 0.0)])
def test_exactly_the_reference_number_of_patches_is_masked(h, w, ratio):
    m = random_patch_mask(50, h, w, ratio, generator=torch.Generator().manual_seed(1))
    kept = int(h * w * (1 - ratio))  # the reference's len_keep
    assert m.shape == (50, 1, h, w)
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    assert (m.sum((1, 2, 3)) == h * w - kept).all()


def test_every_patch_is_masked_equally_often():
    # 4,000 masks over a 7x7 grid at ratio 0.6: each position is masked with probability 30/49.
    m = random_patch_mask(4000, 7, 7, 0.6, generator=torch.Generator().manual_seed(0)).view(4000, 49)
    counts = m.sum(0).numpy()
    assert stats.chisquare(counts).pvalue > 1e-3
    # A biased generator (always masking the same first 30 patches) fails the same test.
    biased = torch.zeros(4000, 49)
    biased[:, :30] = 1
    biased[:2000] = m[:2000]
    assert stats.chisquare(biased.sum(0).numpy()).pvalue < 1e-6
    # Masks of different items are independent: the pair (0, 1) is masked together at the rate of chance.
    both = float((m[:, 0] * m[:, 1]).mean())
    assert abs(both - (30 / 49) * (29 / 48)) < 4 * (0.25 / 4000) ** 0.5


def test_parameter_count_by_hand():
    encoder = 103_722 - (2 * 64 + 64 * 10 + 10)  # convnextv2_fmnist without its final LayerNorm and head
    decoder = (64 * 64 + 64) + 64 + (8 * 64 * 64 + 65 * 64) + (64 * 16 + 16)  # proj, token, block, pred
    assert n_params(fcmae()) == encoder + decoder == model_info("fcmae")["num_params"]


def test_forward_shapes_masks_and_eval_determinism():
    torch.manual_seed(0)
    model = fcmae()
    recon, mask = model(torch.randn(3, 1, 28, 28))
    assert recon.shape == (3, 1, 28, 28) and mask.shape == (3, 1, 7, 7)
    assert (mask.sum((1, 2, 3)) == 49 - int(49 * 0.4)).all()
    model.eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        (a, ma), (b, mb) = model(x), model(x)
        c, mc = model.forward_head(model.forward_features(x))
    assert torch.equal(a, b) and torch.equal(ma, mb) and torch.equal(a, c) and torch.equal(ma, mc)
    model.train()
    assert not torch.equal(model(x)[1], model(x)[1])  # training masks are fresh draws


def test_a_masked_patch_does_not_change_what_the_encoder_sees():
    torch.manual_seed(0)
    model = fcmae().eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        latent, mask = model.forward_features(x)
        pixel_mask = torch.nn.functional.interpolate(mask, scale_factor=4)
        latent2, _ = model.forward_features(x + 3 * pixel_mask * torch.randn_like(x), mask)
    torch.testing.assert_close(latent, latent2, rtol=0, atol=1e-5)


def test_encoder_tensors_carry_over_to_the_classifier(tmp_path):
    from safetensors.torch import save_model

    torch.manual_seed(0)
    pre = fcmae()
    save_model(pre, str(tmp_path / "model.safetensors"))
    clf = convnextv2_fmnist()
    report = load_matching_weights(clf, tmp_path)
    encoder = [k for k in clf.state_dict() if k.startswith("features.")]
    assert sorted(report["matched"]) == sorted(encoder)
    assert all(k.startswith("head.") for k in report["missing"])
    for k in encoder:
        assert torch.equal(clf.state_dict()[k], pre.state_dict()[k])


def test_bad_arguments():
    with pytest.raises(ConfigError, match="encoder"):
        fcmae(encoder="giant")
    with pytest.raises(ConfigError, match="mask_ratio"):
        fcmae(mask_ratio=1.0)
    with pytest.raises(ConfigError, match="divisible"):
        fcmae(input_size=(30, 30))
