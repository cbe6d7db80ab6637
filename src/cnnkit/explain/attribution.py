"""Attribution maps with Captum: which input pixels drive a class score.

Every method returns one map per input with the input's spatial size ``(N, H, W)``:

- ``saliency``: ``max_c |d y_t / d x_c|`` (Simonyan, Vedaldi & Zisserman 2014, Sec. 3.1: the maximum
  absolute gradient over channels).
- ``smoothgrad``: the gradient averaged over ``nt_samples`` copies of the input with Gaussian noise of
  standard deviation ``noise`` x (max - min of the input) (Smilkov et al. 2017, eq. 3; they suggest
  10-20%), then ``max_c |.|`` as for saliency.
- ``gradcam``: ``ReLU(sum_k alpha_k A^k)`` with ``alpha_k`` the spatially averaged gradient of the
  class score with respect to the feature map ``A^k`` of a convolutional layer (Selvaraju et al. 2017,
  eqs. 1-2), bilinearly upsampled to the input size. Non-negative. The spatial average of the gradient
  presumes a head that pools over space (global average pooling, as in the paper's networks); behind a
  flatten + linear head that codes *where* something is, gradients of opposite sign cancel and the map
  can miss the deciding region (saliency and occlusion do not have this limitation).
- ``occlusion``: the drop of the class score when a square window is replaced by 0 (the data mean, for
  normalized inputs), averaged over the windows covering each pixel (Zeiler & Fergus 2014, Sec. 4.2).
- ``integrated-gradients``: ``(x - x') * integral_0^1 dF(x' + a (x - x'))/dx da`` with the zero (mean)
  baseline ``x'``, ``n_steps`` Gauss-Legendre points (Sundararajan, Taly & Yan 2017, eq. 1), summed over
  channels. Signed.

The class ``t`` is ``target`` if given, else each input's predicted class. Every forward/backward hook
that Captum (or anything else during the call) adds to the model is removed afterwards, even on error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ..errors import CnnkitError, did_you_mean

__all__ = ["ATTRIBUTION_METHODS", "SIGNED_METHODS", "attribute", "resolve_layer", "last_conv_layer", "no_leftover_hooks"]

ATTRIBUTION_METHODS = ("saliency", "smoothgrad", "gradcam", "occlusion", "integrated-gradients")
SIGNED_METHODS = ("occlusion", "integrated-gradients")

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks_with_kwargs",
)


@contextlib.contextmanager
def no_leftover_hooks(model: nn.Module) -> Iterator[None]:
    """Remove every hook added to ``model``'s modules inside the block, however the block exits."""
    before = {
        (id(m), attr): set(getattr(m, attr, {}).keys()) for m in model.modules() for attr in _HOOK_DICTS if hasattr(m, attr)
    }
    try:
        yield
    finally:
        for m in model.modules():
            for attr in _HOOK_DICTS:
                d = getattr(m, attr, None)
                if d is None:
                    continue
                keep = before.get((id(m), attr), set())
                for key in [k for k in d.keys() if k not in keep]:
                    del d[key]


def last_conv_layer(model: nn.Module) -> str:
    """The name of the last 2-D convolution in ``model.named_modules()`` order."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not names:
        raise CnnkitError("the model has no Conv2d layer; pass layer=NAME (--layer) to choose one")
    return names[-1]


def resolve_layer(model: nn.Module, layer: str | None) -> tuple[str, nn.Module]:
    """``(name, module)`` for a dotted module name (``features.3``), or the last Conv2d when None."""
    name = layer if layer is not None else last_conv_layer(model)
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        candidates = [n for n in modules if n]
        hint = did_you_mean(name, candidates) or f"; layers: {', '.join(candidates[:20])}{' ...' if len(candidates) > 20 else ''}"
        raise CnnkitError(f"the model has no layer {name!r}{hint}")
    return name, modules[name]


def _targets(model: nn.Module, x: torch.Tensor, target: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(targets, predicted classes, softmax probabilities of the predictions) for a batch."""
    with torch.no_grad():
        logits = model(x)
    if logits.ndim != 2:
        raise CnnkitError(f"Expected the model to output (batch, classes) logits. Received: {tuple(logits.shape)}")
    probs = torch.softmax(logits.float(), dim=1)
    conf, pred = probs.max(dim=1)
    if target is None:
        tgt = pred.clone()
    else:
        if not 0 <= int(target) < logits.shape[1]:
            raise CnnkitError(f"Expected 0 <= target < {logits.shape[1]}. Received: target={target}")
        tgt = torch.full_like(pred, int(target))
    return tgt, pred, conf


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    *,
    target: int | None = None,
    layer: str | None = None,
    nt_samples: int = 16,
    noise: float = 0.15,
    n_steps: int = 32,
    window: int | None = None,
    stride: int | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attribution maps ``(N, H, W)`` for inputs ``x`` ``(N, C, H, W)`` and the targets used ``(N,)``.

    Args:
        method: one of :data:`ATTRIBUTION_METHODS`.
        target: the class to explain; default each input's predicted class.
        layer: Grad-CAM's layer (dotted module name); default the last Conv2d.
        nt_samples, noise: SmoothGrad's number of noisy copies and noise level (fraction of the input range).
        n_steps: Integrated Gradients' integration points.
        window, stride: occlusion window side and stride (default ``max(2, round(min(H, W) / 7))`` and half that).
        seed: SmoothGrad's noise seed.
    """
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Occlusion, Saliency

    if method not in ATTRIBUTION_METHODS:
        raise CnnkitError(f"Unknown attribution method {method!r}{did_you_mean(str(method), ATTRIBUTION_METHODS)}")
    if x.ndim != 4:
        raise CnnkitError(f"Expected images of shape (N, C, H, W). Received: {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    device = next(iter(model.parameters()), torch.empty(0)).device
    x = x.detach().to(device).float()
    h, w = x.shape[-2:]
    try:
        with no_leftover_hooks(model):
            tgt, _, _ = _targets(model, x, target)
            xi = x.clone().requires_grad_(True)
            if method == "saliency":
                a = Saliency(model).attribute(xi, target=tgt, abs=True).amax(dim=1)
            elif method == "smoothgrad":
                span = float(x.max() - x.min()) or 1.0
                gen_state = torch.random.get_rng_state()
                torch.manual_seed(seed)
                try:
                    g = NoiseTunnel(Saliency(model)).attribute(
                        xi, nt_type="smoothgrad", nt_samples=nt_samples, stdevs=noise * span, target=tgt, abs=False
                    )
                finally:
                    torch.random.set_rng_state(gen_state)
                a = g.abs().amax(dim=1)
            elif method == "gradcam":
                _, module = resolve_layer(model, layer)
                cam = LayerGradCam(model, module).attribute(xi, target=tgt, relu_attributions=True)
                if cam.ndim != 4:
                    raise CnnkitError(f"Grad-CAM needs a layer with (N, C, H, W) output; {layer or 'that layer'} gives {tuple(cam.shape)}")
                a = LayerAttribution.interpolate(cam, (h, w), interpolate_mode="bilinear")[:, 0]
                a = a.clamp_min(0)  # bilinear weights are convex, this only removes float noise
            elif method == "occlusion":
                win = window or max(2, round(min(h, w) / 7))
                st = stride or max(1, win // 2)
                c = x.shape[1]
                a = Occlusion(model).attribute(
                    xi, sliding_window_shapes=(c, win, win), strides=(c, st, st), baselines=0.0, target=tgt,
                    # several windows per forward pass: the loop over windows dominates otherwise
                    perturbations_per_eval=max(1, 256 // max(len(x), 1)),
                ).mean(dim=1)
            else:
                a = IntegratedGradients(model).attribute(
                    xi, baselines=0.0, target=tgt, n_steps=n_steps, internal_batch_size=max(len(x), 1) * 8
                ).sum(dim=1)
    finally:
        model.train(was_training)
    return a.detach(), tgt
