"""``task: masked_autoencoder``: self-supervised pre-training by reconstructing masked patches (FCMAE).

The model (``fcmae``) returns ``(reconstruction, mask)``: a prediction of every pixel, laid out as the
image, and the patch mask (1 = masked) at the patch grid. The loss is the mean squared error over the
pixels of the **masked patches only** (Woo et al. 2023, Sec. 3, "we compute the MSE between the
reconstructed and target images ... only on the masked patches", as in He et al. 2022's MAE), against
each patch's pixels normalised by the patch's own mean and standard deviation when ``norm_pix_loss``
(MAE's Sec. 3 "normalized pixels" target, FCMAE's default). Labels are read by nobody.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError
from .base import Forward, StepOutput, Task, register_task

__all__ = ["MaskedAutoencoder", "masked_patch_loss", "patch_targets"]


def patch_targets(x: Tensor, patch_size: int, *, norm_pix_loss: bool, eps: float = 1e-6) -> Tensor:
    """The target of each patch: ``(B, p*p*C, H / p, W / p)``, per-patch normalised when ``norm_pix_loss``
    (mean 0 and unit unbiased variance over the patch's p*p*C values, as the reference's ``forward_loss``)."""
    t = F.pixel_unshuffle(x.float(), patch_size)
    if norm_pix_loss:
        mean = t.mean(dim=1, keepdim=True)
        var = t.var(dim=1, keepdim=True)
        t = (t - mean) / (var + eps).sqrt()
    return t


def masked_patch_loss(reconstruction: Tensor, x: Tensor, mask: Tensor, *, norm_pix_loss: bool = True) -> Tensor:
    """Mean over masked patches of the per-patch mean squared error (the reference's ``forward_loss``).

    Args:
        reconstruction: ``(B, C, H, W)`` predictions (pixel-shuffled patches).
        x: ``(B, C, H, W)`` inputs.
        mask: ``(B, 1, H / p, W / p)``, 1 at masked patches.

    Example:
        >>> x = torch.zeros(1, 1, 4, 4); mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
        >>> recon = torch.zeros(1, 1, 4, 4); recon[..., :2, :2] = 2.0; recon[..., 2:, 2:] = 9.0
        >>> float(masked_patch_loss(recon, x, mask, norm_pix_loss=False))  # only the masked patch counts
        4.0
    """
    p = x.shape[-1] // mask.shape[-1]
    if x.shape[-2] != p * mask.shape[-2] or reconstruction.shape != x.shape:
        raise ValueError(
            f"Expected reconstruction {tuple(x.shape)} and a mask on a grid dividing it. "
            f"Received: reconstruction {tuple(reconstruction.shape)}, mask {tuple(mask.shape)}"
        )
    target = patch_targets(x, p, norm_pix_loss=norm_pix_loss)
    pred = F.pixel_unshuffle(reconstruction.float(), p)
    per_patch = (pred - target).square().mean(dim=1, keepdim=True)  # (B, 1, h, w)
    m = mask.float()
    return (per_patch * m).sum() / m.sum().clamp_min(1.0)


@register_task
class MaskedAutoencoder(Task):
    """Masked-patch reconstruction (FCMAE); ``y`` is ignored.

    Args:
        norm_pix_loss: per-patch normalised targets (the reference's default for pre-training); False:
            the model's input pixels as they are.

    Metrics: ``loss`` (what is minimised) and ``reconstruction_loss`` (the same number under its own name:
    the masked-patch MSE that ``summary.json`` reports as ``test_reconstruction_loss``).

    Example:
        >>> from cnnkit.models import create_model
        >>> task, model = MaskedAutoencoder(), create_model("fcmae", input_size=(8, 8))
        >>> out = task.train_step(model, torch.randn(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))
        >>> out.loss.ndim, out.outputs.shape
        (0, torch.Size([4, 1, 8, 8]))
    """

    name: ClassVar[str] = "masked_autoencoder"
    target: ClassVar[str] = "anything (labels are ignored)"
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "reconstruction_loss")
    monitor: ClassVar[tuple[str, str]] = ("loss", "min")

    def __init__(self, *, norm_pix_loss: bool = True) -> None:
        self.norm_pix_loss = bool(norm_pix_loss)

    def train_step(self, forward: Forward, x: Tensor, y: Tensor) -> StepOutput:
        out = forward(x)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise DataError("task masked_autoencoder needs a model that returns (reconstruction, mask), such as fcmae")
        reconstruction, mask = out
        loss = masked_patch_loss(reconstruction, x, mask, norm_pix_loss=self.norm_pix_loss)
        return StepOutput(loss, reconstruction, y)

    def metric_state(self, device: torch.device) -> Tensor:
        return torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, count

    def update_metrics(self, state: Tensor, step: StepOutput) -> None:
        n = step.outputs.shape[0]
        state[0] += step.loss.detach().double() * n
        state[1] += n

    def compute_metrics(self, state: Tensor) -> dict[str, float]:
        loss_sum, count = state.tolist()
        loss = loss_sum / count if count else float("nan")
        return {"loss": loss, "reconstruction_loss": loss, "count": int(count)}

    def write_plots(self, *, model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], run_dir: Path, device: torch.device) -> None:
        """``plots/reconstructions.png``: input, masked input and reconstruction of up to 8 test images."""
        from ..plots import plot_image_grid

        x = next(iter(batches), (None, None))[0]
        if x is None:
            return
        x = x[:8].to(device)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            recon, mask = model(x)
        model.train(was_training)
        p = x.shape[-1] // mask.shape[-1]
        keep = F.interpolate(1.0 - mask.float(), scale_factor=p, mode="nearest")
        if self.norm_pix_loss:  # back to pixels with each patch's own statistics (as MAE's figures do)
            raw = F.pixel_unshuffle(x.float(), p)
            mean, std = raw.mean(1, keepdim=True), (raw.var(1, keepdim=True) + 1e-6).sqrt()
            recon = F.pixel_shuffle(F.pixel_unshuffle(recon.float(), p) * std + mean, p)
        shown = recon * (1 - keep) + x * keep  # visible patches as given, masked ones reconstructed
        images, titles = [], []
        for i in range(x.shape[0]):
            images += [x[i], x[i] * keep[i] + (1 - keep[i]) * x[i].min(), shown[i]]
            titles += ["input", "visible", "reconstruction"]
        plot_image_grid(images, titles, run_dir / "plots" / "reconstructions.png", cols=6, suptitle="FCMAE: masked patches reconstructed")

    def headline(self, metrics: object) -> str | None:
        value = metrics.get("test_reconstruction_loss") if isinstance(metrics, dict) else None
        return f"test reconstruction loss (masked patches): {value:.4f}" if isinstance(value, (int, float)) else None

    def __repr__(self) -> str:
        return f"MaskedAutoencoder(norm_pix_loss={self.norm_pix_loss})"
