"""FCMAE (Woo et al. 2023): a fully convolutional masked autoencoder for ConvNeXt V2 pre-training."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, check_int, check_real
from ._registry import register_model
from .convnextv2 import CONVNEXTV2_CONFIGS, ConvNeXtV2Block, ConvNeXtV2Encoder, init_convnextv2_

__all__ = ["FCMAE", "fcmae", "random_patch_mask"]


def random_patch_mask(
    batch: int, height: int, width: int, mask_ratio: float, *, generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Random patch masks, 1 = masked: exactly ``L - int(L * (1 - mask_ratio))`` of the ``L = height * width``
    patches of each item, uniformly at random (the reference's ``gen_random_mask``: the positions of the
    smallest noise values are kept).

    Returns:
        float ``(batch, 1, height, width)``.

    Example:
        >>> m = random_patch_mask(2, 7, 7, 0.6, generator=torch.Generator().manual_seed(0))
        >>> m.shape, m.sum((1, 2, 3)).tolist()
        (torch.Size([2, 1, 7, 7]), [30.0, 30.0])
    """
    n = height * width
    keep = int(n * (1 - mask_ratio))
    noise = torch.rand(batch, n, generator=generator, device=device)
    ranks = noise.argsort(dim=1).argsort(dim=1)  # rank of each patch's noise within its item
    return (ranks >= keep).float().view(batch, 1, height, width)


class FCMAE(nn.Module):
    """Fully convolutional masked autoencoder: a ConvNeXt V2 encoder that sees only the visible patches, a
    mask token at every masked patch, one light ConvNeXt V2 block as decoder and a 1x1 convolution to each
    patch's pixels.

    The patch size is the encoder's total stride (32 in the paper; 4 for ``convnextv2_fmnist``, so a
    28x28 image is a 7x7 patch grid). In training mode each forward draws new masks from torch's global
    random stream (checkpointed, so a resumed run draws the same ones); in eval mode from a generator
    seeded with ``mask_seed`` on every call, so validation and test losses compare across epochs and runs.

    Args:
        encoder: a configuration of :data:`~cnnkit.models.convnextv2.CONVNEXTV2_CONFIGS` (``fmnist``,
            ``atto``, ...); the encoder's tensors are named as in the classifier of that configuration
            (``features.*``), so ``--init-from`` carries them over.
        in_channels: image channels.
        input_size: (H, W) the model is built for (multiples of the patch size).
        mask_ratio: fraction of patches masked (0.6, the paper's best: Table 3).
        decoder_dim: the decoder's width (512 in the paper).
        decoder_depth: decoder blocks (1 in the paper).
        mask_seed: seed of the evaluation masks.

    Shape:
        ``forward(x)``: ``(B, C, H, W) -> (reconstruction (B, C, H, W), mask (B, 1, H / p, W / p))`` with
        mask 1 at masked patches. The reconstruction of a patch is the decoder's prediction of its pixels
        (in the task's target space: per-patch normalised pixels with ``norm_pix_loss``).

    Example:
        >>> recon, mask = fcmae()(torch.randn(2, 1, 28, 28))
        >>> recon.shape, mask.shape, int(mask[0].sum())
        (torch.Size([2, 1, 28, 28]), torch.Size([2, 1, 7, 7]), 30)

    Reference:
        S. Woo et al., "ConvNeXt V2: Co-designing and Scaling ConvNets with Masked Autoencoders", CVPR 2023,
        Sec. 3 (masking, encoder with sparse convolution, decoder, loss), Table 2-3 (decoder, mask ratio).

    Deviations:
        Sparse convolution is emulated with dense convolutions and binary masks before and after them, the
        alternative the paper names (Sec. 3, "the binary masking operation ... has numerically the same
        effect as sparse convolutions"); the reference implementation uses MinkowskiEngine. NCHW throughout.
    """

    def __init__(
        self, *, encoder: str = "fmnist", in_channels: int = 1, input_size: tuple[int, int] = (28, 28),
        mask_ratio: float = 0.6, decoder_dim: int = 64, decoder_depth: int = 1, mask_seed: int = 0,
    ) -> None:
        super().__init__()
        check_choice(encoder, "encoder", tuple(CONVNEXTV2_CONFIGS))
        self.encoder_name = encoder
        self.mask_ratio = check_real(mask_ratio, "mask_ratio", low=0.0, high=1.0, high_open=True)
        self.mask_seed = int(mask_seed)
        self.in_channels = check_int(in_channels, "in_channels")
        cfg = CONVNEXTV2_CONFIGS[encoder]
        self.features = ConvNeXtV2Encoder(in_channels=in_channels, **cfg)  # type: ignore[arg-type]
        self.features.check_size(*input_size)
        self.patch_size = self.features.stride
        dim = self.features.dims[-1]
        self.decoder_dim = check_int(decoder_dim, "decoder_dim")
        self.proj = nn.Conv2d(dim, decoder_dim, 1)
        self.mask_token = nn.Parameter(torch.zeros(1, decoder_dim, 1, 1))
        self.decoder = nn.Sequential(*(ConvNeXtV2Block(decoder_dim) for _ in range(check_int(decoder_depth, "decoder_depth"))))
        self.pred = nn.Conv2d(decoder_dim, self.patch_size**2 * in_channels, 1)
        init_convnextv2_(self)
        nn.init.normal_(self.mask_token, std=0.02)
        self.input_shape = (in_channels, *input_size)

    def make_mask(self, x: Tensor) -> Tensor:
        """Masks for batch ``x`` at its patch grid (1 = masked); see the class docstring for the random source."""
        h, w = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        generator = None
        if not self.training:
            generator = torch.Generator(device=x.device).manual_seed(self.mask_seed)
        return random_patch_mask(x.shape[0], h, w, self.mask_ratio, generator=generator, device=x.device)

    def forward_features(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The encoder on the visible patches: ``(latent (B, dim, H / p, W / p), mask)``."""
        self.features.check_size(x.shape[-2], x.shape[-1])
        if mask is None:
            mask = self.make_mask(x)
        return self.features(x, 1.0 - mask), mask

    def forward_head(self, features: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """The decoder: mask tokens at the masked patches, then every patch's pixels."""
        latent, mask = features
        z = self.proj(latent)
        m = mask.to(z.dtype)
        z = z * (1.0 - m) + self.mask_token.to(z.dtype) * m
        patches = self.pred(self.decoder(z))  # (B, p*p*C, H / p, W / p)
        return F.pixel_shuffle(patches, self.patch_size), mask

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.forward_head(self.forward_features(x, mask))

    def extra_repr(self) -> str:
        return f"encoder={self.encoder_name!r}, patch_size={self.patch_size}, mask_ratio={self.mask_ratio}"


@register_model(
    paper="Woo et al. 2023, ConvNeXt V2 (FCMAE), CVPR, Sec. 3", year=2023, input_size=(1, 28, 28),
    num_params=145_136, task="masked_autoencoder", gradcam_layer=None,
)
def fcmae(
    *, encoder: str = "fmnist", in_channels: int = 1, input_size: tuple[int, int] | list[int] = (28, 28),
    mask_ratio: float = 0.6, decoder_dim: int = 64, decoder_depth: int = 1, num_classes: int | None = None,
) -> FCMAE:
    """FCMAE pre-training of a ConvNeXt V2 encoder (default: ``convnextv2_fmnist``'s). See :class:`FCMAE`.

    ``num_classes`` (the data's, which a run records) is accepted and unused: pre-training reads no labels.
    """
    del num_classes
    return FCMAE(
        encoder=encoder, in_channels=in_channels, input_size=tuple(input_size),  # type: ignore[arg-type]
        mask_ratio=mask_ratio, decoder_dim=decoder_dim, decoder_depth=decoder_depth,
    )
