"""ConvNeXt V2: parameter counts by hand from Table 1, and the masked (sparse-emulating) block against a
naive per-site reference that only ever reads visible sites."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnkit.errors import ConfigError
from cnnkit.models import model_info
from cnnkit.models.convnextv2 import (
    CONVNEXTV2_CONFIGS,
    ConvNeXtV2Block,
    ConvNeXtV2Encoder,
    convnextv2_atto,
    convnextv2_fmnist,
)

from ._beyond2d_harness import check_model, n_params


def _hand_count(depths, dims, stem, c_in, classes):
    # Block(d): dwconv 7x7 (49d + d), LayerNorm (2d), 1x1 d->4d (4d^2 + 4d), GRN (2 * 4d), 1x1 4d->d (4d^2 + d).
    n = c_in * dims[0] * stem * stem + dims[0] + 2 * dims[0]  # stem conv + LayerNorm
    for i, (d, depth) in enumerate(zip(dims, depths)):
        if i:
            n += 2 * dims[i - 1] + dims[i - 1] * d * 4 + d  # LayerNorm + 2x2 stride-2 conv
        n += depth * (8 * d * d + 65 * d)
    return n + 2 * dims[-1] + dims[-1] * classes + classes  # final LayerNorm + head


def test_atto_parameter_count_matches_table_1():
    cfg = CONVNEXTV2_CONFIGS["atto"]
    hand = _hand_count(cfg["depths"], cfg["dims"], 4, 3, 1000)
    with torch.device("meta"):
        model = convnextv2_atto()
    assert n_params(model) == hand == model_info("convnextv2_atto")["num_params"]
    assert round(hand / 1e6, 1) == 3.7  # Table 1 of Woo et al. (2023): Atto, 3.7M


def test_fmnist_parameter_count_and_forward():
    cfg = CONVNEXTV2_CONFIGS["fmnist"]
    model = convnextv2_fmnist()
    assert n_params(model) == _hand_count(cfg["depths"], cfg["dims"], 2, 1, 10) == model_info("convnextv2_fmnist")["num_params"]
    check_model(model, torch.randn(2, 1, 28, 28), (2, 10))


def test_input_not_divisible_by_the_stride_is_refused():
    with pytest.raises(ConfigError, match="divisible by the encoder's total stride 4"):
        convnextv2_fmnist()(torch.randn(1, 1, 30, 30))
    with pytest.raises(ConfigError, match="as many depths as dims"):
        ConvNeXtV2Encoder(in_channels=1, depths=(1, 2), dims=(4,), stem_stride=2)


def _naive_sparse_block(block: ConvNeXtV2Block, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The block as a sparse convolution would compute it: every sum runs over visible sites only."""
    b, c, h, w = x.shape
    wdw, bdw = block.dwconv.weight[:, 0], block.dwconv.bias
    out = torch.zeros_like(x)
    for n in range(b):
        sites = [(i, j) for i in range(h) for j in range(w) if keep[n, 0, i, j] > 0]
        y = {}
        for i, j in sites:
            acc = bdw.clone()
            for a in range(7):
                for bb in range(7):
                    ii, jj = i + a - 3, j + bb - 3
                    if 0 <= ii < h and 0 <= jj < w and keep[n, 0, ii, jj] > 0:
                        acc = acc + wdw[:, a, bb] * x[n, :, ii, jj]
            v = F.layer_norm(acc, (c,), block.norm.weight, block.norm.bias, block.norm.eps)
            v = block.pwconv1.weight[:, :, 0, 0] @ v + block.pwconv1.bias
            y[i, j] = F.gelu(v)
        g = torch.sqrt(sum(v.square() for v in y.values()))  # GRN's norm over the visible sites (Eq. 1)
        nrm = g / (g.mean() + block.grn.eps)
        for (i, j), v in y.items():
            v = block.grn.gamma * (v * nrm) + block.grn.beta + v
            out[n, :, i, j] = x[n, :, i, j] + block.pwconv2.weight[:, :, 0, 0] @ v + block.pwconv2.bias
    return out


def test_masked_block_equals_a_sparse_computation_over_visible_sites():
    torch.manual_seed(0)
    block = ConvNeXtV2Block(3).double()
    with torch.no_grad():  # GRN starts as the identity; give it weights so its norm matters
        block.grn.gamma.normal_()
        block.grn.beta.normal_()
    x = torch.randn(2, 3, 6, 6, dtype=torch.double)
    keep = (torch.rand(2, 1, 6, 6) > 0.5).double()
    with torch.no_grad():
        got = block(x * keep, keep)
        want = _naive_sparse_block(block, x, keep)
        dense = block(x * keep)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    # Without the masks the visible sites see the masked ones (LayerNorm's bias, GRN's norm): the check bites.
    assert not torch.allclose(dense * keep, want, atol=1e-4)


def test_masked_encoder_never_lets_a_masked_patch_reach_a_visible_one():
    torch.manual_seed(0)
    enc = ConvNeXtV2Encoder(in_channels=1, depths=(1, 1), dims=(8, 16), stem_stride=2)
    with torch.no_grad():
        for m in enc.modules():
            if hasattr(m, "gamma"):
                m.gamma.normal_()
                m.beta.normal_()
    keep = (torch.rand(3, 1, 7, 7) > 0.6).float()
    x = torch.randn(3, 1, 28, 28)
    pixel_keep = F.interpolate(keep, scale_factor=4, mode="nearest")
    x2 = x + 5 * torch.randn_like(x) * (1 - pixel_keep)  # different content under the masks only
    with torch.no_grad():
        a, b = enc(x, keep), enc(x2, keep)
        dense = enc(x * pixel_keep)  # zeroed input, dense convolutions
    assert a.shape == (3, 16, 7, 7)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    assert float((a * (1 - keep)).abs().max()) == 0.0  # masked sites stay empty
    # Zeroing the input alone is not sparse convolution: masked sites fill up and leak into visible ones.
    assert float(((dense - a) * keep).abs().max()) > 1e-2
