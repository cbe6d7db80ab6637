"""DCGAN generator (Radford et al. 2016): fractionally-strided convolutions from a code z to an image."""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from ._common import FeatureHeadModel
from ._registry import register_model

__all__ = ["DCGANGenerator", "dcgan_generator"]

_UPSAMPLE = ("transpose", "resize_conv")


def _up(c_in: int, c_out: int, upsample: str, bias: bool) -> nn.Module:
    if upsample == "transpose":
        return nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=bias)  # exactly doubles H, W
    # Odena et al. (2016): resize first, then convolve, so every output pixel gets the same number of
    # kernel taps; a transposed conv with kernel 4 / stride 2 overlaps unevenly -> checkerboards.
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias))


class DCGANGenerator(FeatureHeadModel):
    """The DCGAN generator of Fig. 1: project z to 4x4x(8 ngf), then four 2x up-sampling steps to 64x64.

    Guidelines from Sec. 3 of the paper: no pooling or fully connected hidden layers, batch norm after
    every layer but the output, ReLU inside, tanh at the output.

    Args:
        latent_dim: Size of the code z (100).
        out_channels: Image channels (3).
        base_width: ngf; the stages have 8, 4, 2, 1 x ngf channels (128 gives the paper's 1024-512-256-128).
        upsample: ``"transpose"`` (the paper's fractionally-strided conv, 4x4 stride 2) or ``"resize_conv"``
            (nearest 2x resize then a 3x3 conv; Odena et al. 2016).

    Shape:
        Input ``(B, latent_dim, 1, 1)`` (z as a 1x1 map); output ``(B, out_channels, 64, 64)`` in [-1, 1].

    Example:
        >>> import torch
        >>> dcgan_generator(base_width=8)(torch.randn(2, 100, 1, 1)).shape
        torch.Size([2, 3, 64, 64])

    Reference:
        A. Radford, L. Metz, S. Chintala, "Unsupervised Representation Learning with Deep Convolutional
        Generative Adversarial Networks", ICLR 2016, Sec. 3 and Fig. 1. A. Odena, V. Dumoulin, C. Olah,
        "Deconvolution and Checkerboard Artifacts", Distill 2016.

    Deviations:
        The "project and reshape" of z is a 4x4 transposed convolution on the 1x1 map (the same linear map
        as a bias-free fully connected layer to 4x4x(8 ngf)). Convolutions followed by batch norm have no
        bias (the batch norm's shift replaces it); the output convolution has none either, as in the
        authors' reference code.
    """

    def __init__(
        self, *, latent_dim: int = 100, out_channels: int = 3, base_width: int = 128, upsample: str = "transpose"
    ) -> None:
        super().__init__()
        if upsample not in _UPSAMPLE:
            raise ConfigError(f"Expected upsample in {_UPSAMPLE}. Received: upsample={upsample!r}")
        if latent_dim < 1 or base_width < 1:
            raise ConfigError(f"Expected latent_dim >= 1 and base_width >= 1. Received: latent_dim={latent_dim}, base_width={base_width}")
        widths = [base_width * m for m in (8, 4, 2, 1)]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, widths[0], 4, bias=False),  # (B, 8 ngf, 4, 4): project and reshape
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in zip(widths, widths[1:]):  # 4 -> 8 -> 16 -> 32
            layers += [_up(c_in, c_out, upsample, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(_up(widths[-1], out_channels, upsample, bias=False), nn.Tanh())  # 32 -> 64
        self.input_shape = (latent_dim, 1, 1)


@register_model(
    paper="Radford, Metz & Chintala 2016, DCGAN, ICLR, Fig. 1",
    year=2016,
    input_size=(100, 1, 1),
    num_params=12_658_432,
    task="generation",
    gradcam_layer=None,
)
def dcgan_generator(
    *, latent_dim: int = 100, out_channels: int = 3, base_width: int = 128, upsample: str = "transpose"
) -> DCGANGenerator:
    """The LSUN generator of Fig. 1 (z: 100 -> 1024x4x4 -> ... -> 3x64x64). See :class:`DCGANGenerator`."""
    return DCGANGenerator(latent_dim=latent_dim, out_channels=out_channels, base_width=base_width, upsample=upsample)
