"""Attribution maps: shapes, oracles on linear models, Integrated Gradients' completeness, Grad-CAM on a
task whose deciding region is known, and hooks always removed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit.errors import CnnkitError
from cnnkit.explain import ATTRIBUTION_METHODS, attribute, no_leftover_hooks

from .explain_helpers import SQUARE, shape_task, square_task

_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _no_hooks(model: nn.Module) -> bool:
    return all(not getattr(m, d) for m in model.modules() for d in _HOOK_DICTS)


def _cnn(c: int = 3, k: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(c, 6, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, k),
    ).eval()


@pytest.mark.parametrize("method", ATTRIBUTION_METHODS)
def test_shape_is_the_input_size_and_hooks_are_removed(method: str) -> None:
    model = _cnn()
    x = torch.randn(3, 3, 12, 20)
    a, tgt = attribute(model, x, method, nt_samples=4, n_steps=8, window=4, stride=3)
    assert a.shape == (3, 12, 20)
    assert torch.isfinite(a).all()
    with torch.no_grad():
        assert (tgt == model(x).argmax(1)).all()  # default target: the prediction
    assert _no_hooks(model)
    assert not model.training
    a2, tgt2 = attribute(model, x, method, target=2, nt_samples=4, n_steps=8)
    assert (tgt2 == 2).all() and a2.shape == (3, 12, 20)
    if method in ("saliency", "smoothgrad", "gradcam"):
        assert (a >= 0).all()


def test_hooks_removed_even_on_error() -> None:
    model = _cnn()
    with pytest.raises(CnnkitError, match="no layer 'nope'"):
        attribute(model, torch.randn(1, 3, 8, 8), "gradcam", layer="nope")
    assert _no_hooks(model)
    with pytest.raises(RuntimeError, match="boom"):
        with no_leftover_hooks(model):
            model[0].register_forward_hook(lambda *a: None)
            model[3].register_full_backward_hook(lambda *a: None)
            raise RuntimeError("boom")
    assert _no_hooks(model)
    # hooks that were there before are kept
    h = model[0].register_forward_hook(lambda *a: None)
    attribute(model, torch.randn(1, 3, 8, 8), "gradcam")
    assert len(model[0]._forward_hooks) == 1
    h.remove()


def test_bad_arguments() -> None:
    model = _cnn()
    with pytest.raises(CnnkitError, match="did you mean 'saliency'"):
        attribute(model, torch.randn(1, 3, 8, 8), "salency")
    with pytest.raises(CnnkitError, match="Expected 0 <= target < 4"):
        attribute(model, torch.randn(1, 3, 8, 8), "saliency", target=4)
    with pytest.raises(CnnkitError, match=r"\(N, C, H, W\)"):
        attribute(model, torch.randn(3, 8, 8), "saliency")


def test_saliency_and_occlusion_of_a_linear_model() -> None:
    """f(x) = W x: the gradient is W_t (Simonyan et al.); occluding one pixel (all channels) with 0 lowers
    the score by sum_c W_t[c] x[c] there."""
    torch.manual_seed(1)
    lin = nn.Linear(2 * 5 * 6, 3)
    model = nn.Sequential(nn.Flatten(), lin).eval()
    x = torch.randn(4, 2, 5, 6)
    a, tgt = attribute(model, x, "saliency", target=1)
    w = lin.weight[1].detach().reshape(2, 5, 6)
    torch.testing.assert_close(a, w.abs().amax(0).expand(4, 5, 6))
    occ, _ = attribute(model, x, "occlusion", target=1, window=1, stride=1)
    torch.testing.assert_close(occ, (w * x).sum(1), atol=1e-5, rtol=1e-4)


def test_integrated_gradients_completeness() -> None:
    """Sundararajan et al. 2017, Prop. 1: attributions sum to F(x) - F(baseline)."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    x = torch.randn(5, 1, 8, 8)
    a, tgt = attribute(model, x, "integrated-gradients", n_steps=64)
    with torch.no_grad():
        f = model(x).gather(1, tgt[:, None])[:, 0] - model(torch.zeros_like(x)).gather(1, tgt[:, None])[:, 0]
    torch.testing.assert_close(a.sum(dim=(1, 2)), f, atol=1e-3, rtol=1e-3)


def test_smoothgrad_is_seeded_and_leaves_global_rng_alone() -> None:
    model = _cnn()
    x = torch.randn(2, 3, 8, 8)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a1, _ = attribute(model, x, "smoothgrad", nt_samples=4, seed=5)
    after = torch.rand(1)
    assert before == after
    a2, _ = attribute(model, x, "smoothgrad", nt_samples=4, seed=5)
    torch.testing.assert_close(a1, a2)


def _half_mass(a: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
    """Fraction of each map's mass in the half of the image (0 left, 1 right) that holds the object."""
    half = a.shape[-1] // 2
    left, right = a[..., :half].sum((1, 2)), a[..., half:].sum((1, 2))
    return torch.where(side == 1, right, left) / (left + right).clamp_min(1e-12)


def _peak_near(a: torch.Tensor, corner: torch.Tensor, margin: int = 2) -> torch.Tensor:
    peak = a.flatten(1).argmax(1)
    py, px = peak // a.shape[-1], peak % a.shape[-1]
    return ((py >= corner[:, 0] - margin) & (py < corner[:, 0] + SQUARE + margin)
            & (px >= corner[:, 1] - margin) & (px < corner[:, 1] + SQUARE + margin))


@pytest.mark.parametrize("method", ["saliency", "occlusion", "integrated-gradients"])
def test_attribution_highlights_the_deciding_square(square_model: nn.Module, method: str) -> None:
    """The label is the side (left/right) of a bright square: the maps must sit on the square."""
    x, y, corner = square_task(64, seed=9)
    with torch.no_grad():
        assert (square_model(x).argmax(1) == y).float().mean() >= 0.95
    a, _ = attribute(square_model, x, method, window=4, stride=2)
    assert a.shape == (64, 16, 16)
    a = a.abs() if method == "integrated-gradients" else a.clamp_min(0)
    assert (_half_mass(a, y) > 0.5).float().mean() >= 0.9
    assert _peak_near(a, corner).float().mean() >= 0.8
    assert _no_hooks(square_model)


def test_gradcam_highlights_the_deciding_object(shape_model: nn.Module) -> None:
    """A filled vs a hollow square decides the class; a distractor dot sits in the other half.

    Grad-CAM weights each feature map by its spatially averaged gradient (Selvaraju et al. eq. 1), which
    presumes a head that pools over space; a flatten + linear head that codes *position* (the square
    task above) has gradients of opposite sign on the two halves that average out, so Grad-CAM is tested
    on the global-average-pooling network it was designed for.
    """
    x, y, corner = shape_task(64, seed=9)
    with torch.no_grad():
        assert (shape_model(x).argmax(1) == y).float().mean() >= 0.95
    a, _ = attribute(shape_model, x, "gradcam")
    assert a.shape == (64, 16, 16)
    assert (a >= 0).all()  # ReLU of the weighted maps (eq. 2); bilinear upsampling keeps the sign
    side = (corner[:, 1] >= 8).long()
    assert (_half_mass(a, side) > 0.5).float().mean() >= 0.9
    assert _peak_near(a, corner).float().mean() >= 0.9
    assert _no_hooks(shape_model)
