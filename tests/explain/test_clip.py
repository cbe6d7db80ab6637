"""Clip explanations against independent references: Captum's Grad-CAM on a 3-D convolution, autograd
saliency, a per-frame Grad-CAM computed frame by frame, frame occlusion by hand; and the figure."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import CnnkitError
from cnnkit.explain.clip import clip_attribution, default_clip_layer, explain_clips
from cnnkit.models.c3d import c3d
from cnnkit.models.cnn_lstm import cnn_lstm
from cnnkit.models.two_stream import two_stream


@pytest.fixture
def small_c3d() -> nn.Module:
    torch.manual_seed(0)
    return c3d(variant="small", input_size=(8, 16, 16), in_channels=1, num_classes=3).eval()


def test_gradcam_on_a_conv3d_matches_captum(small_c3d: nn.Module):
    from captum.attr import LayerGradCam

    x = torch.randn(2, 1, 8, 16, 16)
    layer = default_clip_layer(small_c3d)
    assert layer == "features.18"  # conv5b, the registry's gradcam_layer
    module = dict(small_c3d.named_modules())[layer]
    nonzero = 0
    for target in range(3):  # an untrained net's CAM is zero (after the ReLU) for some classes
        maps, importance, tgt = clip_attribution(small_c3d, x, "gradcam", layer=layer, target=target)
        cam = LayerGradCam(small_c3d, module).attribute(x, target=tgt, relu_attributions=True)  # (2, 1, t, h, w)
        ref = F.interpolate(cam, size=(8, 16, 16), mode="trilinear", align_corners=False)[:, 0].clamp_min(0)
        torch.testing.assert_close(maps, ref.detach(), atol=1e-6, rtol=1e-5)
        assert maps.shape == (2, 8, 16, 16)
        for i in range(2):
            if maps[i].max() > 0:
                nonzero += 1
                assert importance[i].sum().item() == pytest.approx(1.0)
    assert nonzero >= 2


def test_saliency_is_the_max_abs_gradient(small_c3d: nn.Module):
    x = torch.randn(1, 1, 8, 16, 16)
    maps, _, tgt = clip_attribution(small_c3d, x, "saliency", target=2)
    xi = x.clone().requires_grad_(True)
    small_c3d(xi)[0, 2].backward()
    torch.testing.assert_close(maps, xi.grad.abs().amax(1))
    assert tgt.tolist() == [2]


def test_per_frame_gradcam_of_a_cnn_lstm_by_hand():
    torch.manual_seed(0)
    model = cnn_lstm(num_classes=3, in_channels=1, widths=(4, 8)).eval()
    x = torch.randn(2, 1, 5, 8, 8)
    layer = default_clip_layer(model)
    maps, _, tgt = clip_attribution(model, x, "gradcam", layer=layer)
    # Reference: the activation of every frame separately, with the gradient of the clip's score.
    acts = []
    module = dict(model.named_modules())[layer]
    def keep(_m: nn.Module, _i: object, o: torch.Tensor) -> None:
        o.retain_grad()
        acts.append(o)

    handle = module.register_forward_hook(keep)
    model(x).gather(1, tgt[:, None]).sum().backward()
    handle.remove()
    a, g = acts[0].view(2, 5, *acts[0].shape[1:]), acts[0].grad.view(2, 5, *acts[0].shape[1:])
    for b in range(2):
        for t in range(5):
            cam = F.relu((g[b, t].mean((1, 2), keepdim=True) * a[b, t]).sum(0))
            ref = F.interpolate(cam[None, None], size=(8, 8), mode="bilinear", align_corners=False)[0, 0]
            torch.testing.assert_close(maps[b, t], ref.detach().clamp_min(0), atol=1e-6, rtol=1e-5)


def test_frame_occlusion_by_hand_and_two_stream_maps():
    torch.manual_seed(0)
    model = two_stream(variant="small", in_channels=1, num_classes=3, input_size=(4, 32, 32)).eval()
    x = torch.randn(1, 1, 4, 32, 32)
    maps, drops, tgt = clip_attribution(model, x, "occlusion")
    with torch.no_grad():
        base = model(x)[0, tgt[0]]
        for t in range(4):
            xo = x.clone()
            xo[:, :, t] = 0
            assert drops[0, t].item() == pytest.approx((base - model(xo)[0, tgt[0]]).item(), abs=1e-5)
    # Grad-CAM on the temporal stream (no time axis): the same spatial map on every frame.
    maps, _, _ = clip_attribution(model, x, "gradcam", layer=default_clip_layer(model, {"build": {"name": "two_stream"}}))
    torch.testing.assert_close(maps[0, 0], maps[0, 3])


def test_explain_clips_writes_one_figure_per_clip(small_c3d: nn.Module, tmp_path: Path):
    res = explain_clips(small_c3d, torch.randn(2, 1, 8, 16, 16), method="saliency", names=["a", "b"],
                        class_names=["x", "y", "z"], out=tmp_path)
    assert [p.name for p in res.paths] == ["000-a-saliency.png", "001-b-saliency.png"]
    assert all(p.stat().st_size > 1000 for p in res.paths)
    with pytest.raises(CnnkitError, match="for clips choose one of saliency, gradcam, occlusion"):
        clip_attribution(small_c3d, torch.randn(1, 1, 8, 16, 16), "smoothgrad")
    with pytest.raises(CnnkitError, match="Expected clips"):
        clip_attribution(small_c3d, torch.randn(1, 1, 16, 16), "saliency")
    # No hooks are left behind.
    assert all(not m._forward_hooks for m in small_c3d.modules())
