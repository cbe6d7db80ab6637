"""Spectral residual (Ren et al. 2019, after Hou & Zhang 2007) and SR-CNN for time-series anomalies."""

from __future__ import annotations

import torch
from torch import nn

from ..layers.masked_pool import zero_padding
from ._common import FeatureHeadModel
from ._registry import register_model
from ._series import check_positive

__all__ = ["SRCNN", "spectral_residual", "sr_scores", "srcnn"]


def spectral_residual(x: torch.Tensor, *, q: int = 3, extend: int = 5) -> torch.Tensor:
    """The saliency map of Ren et al. (2019), Eq. 1-5, of windows ``x`` ``(B, L)``.

    ``A = |FFT(x)|``, ``L = log A``, ``R = L - h_q * L`` (an average filter of size ``q``), ``S =
    |IFFT(exp(R + iP))|``. Before the transform the window is extended by ``extend`` copies of an estimated
    next point (Sec. 3.2, Eq. 5, as the authors' code computes it), so the last real point is not at the
    edge; the extension is dropped from the result.
    """
    b, n = x.shape
    if extend and n > 3:
        # The estimate of the authors' code (microsoft/anomalydetector, extend_series): from the m + 1 points
        # before the last one, x_{n-m} + sum_i (x_{n-1} - x_{n-1-i}) / i; the last point itself is left out,
        # or a spike there would be carried into the extension and stop looking like a spike.
        m = min(5, n - 2)
        vals = x[:, -m - 2 : -1]  # (B, m + 1): x_{n-m-1} .. x_{n-1}
        slopes = (vals[:, -1:] - vals[:, :-1]) / torch.arange(m, 0, -1, dtype=x.dtype, device=x.device)
        est = vals[:, 1:2] + slopes.sum(dim=1, keepdim=True)
        x = torch.cat([x, est.expand(b, extend)], dim=1)
    x = x.double()
    basis = _dft_basis(x.shape[1], x.device) if x.shape[1] <= _DFT_MAX else None
    re, im = _fourier(x, None, basis=basis)
    amp = (re.square() + im.square()).sqrt().clamp_min(1e-8)
    log_amp = amp.log()
    pad = q // 2
    padded = torch.cat([log_amp[:, :1].expand(-1, pad), log_amp, log_amp[:, -1:].expand(-1, q - 1 - pad)], dim=1)
    # h_q * L as a sum of q shifted slices: onnxruntime has no float64 AveragePool or Conv.
    m = log_amp.shape[1]
    avg = sum(padded[:, j : j + m] for j in range(q)) / q
    # exp(R + iP) = exp(R) * f / |f|; its inverse transform's modulus is the saliency map.
    g = torch.exp(log_amp - avg) / amp
    sr, si = _fourier(g * re, g * im, basis=basis, inverse=True)
    sal = (sr.square() + si.square()).sqrt()
    return sal[:, :n].to(torch.float32)


# Windows up to this length are transformed by a matrix product with the DFT matrix instead of torch.fft:
# the same numbers (float64; tested against torch.fft), but real-valued operations only, so a trained
# SR-CNN exports to ONNX (the exporter has no complex tensors). Longer series (the plain spectral-residual
# baseline on a whole series) keep the O(n log n) FFT; an (n, n) matrix would not fit.
_DFT_MAX = 4096


def _dft_basis(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)`` of the DFT's angles ``2 pi k t / n``, float64 ``(n, n)``."""
    k = torch.arange(n, dtype=torch.float64, device=device)
    # k * t mod n before scaling keeps the angles exact for long windows.
    angle = torch.remainder(k[:, None] * k[None, :], n) * (2 * torch.pi / n)
    return torch.cos(angle), torch.sin(angle)


def _fourier(re: torch.Tensor, im: torch.Tensor | None, *, basis: tuple[torch.Tensor, torch.Tensor] | None,
             inverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(Inverse) DFT of ``re + i im`` as ``(real, imag)``: by ``basis`` matrix products, or torch.fft when None."""
    if basis is not None:
        return _dft(re, im, inverse=inverse, basis=basis)
    z = re if im is None else torch.complex(re, im)
    f = torch.fft.ifft(z, dim=-1) if inverse else torch.fft.fft(z, dim=-1)
    return f.real, f.imag


def _dft(re: torch.Tensor, im: torch.Tensor | None = None, *, inverse: bool = False,
         basis: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The discrete Fourier transform along the last dim, ``sum_t x_t exp(-+2 pi i k t / n)`` (divided by
    ``n`` when ``inverse``), of the complex ``re + i im`` (``im`` None: real input), as real matrix products
    (``basis``: :func:`_dft_basis` of the length, when the caller has it)."""
    n = re.shape[-1]
    cos, sin = basis if basis is not None else _dft_basis(n, re.device)
    if not inverse:  # exp(-i a) = cos a - i sin a
        if im is None:
            return re @ cos, -(re @ sin)
        return re @ cos + im @ sin, im @ cos - re @ sin
    assert im is not None
    return (re @ cos - im @ sin) / n, (im @ cos + re @ sin) / n


def sr_scores(x: torch.Tensor, *, q: int = 3, z: int = 21) -> torch.Tensor:
    """Ren et al. (2019), Eq. 6: ``(S - mean_z(S)) / mean_z(S)`` of each window's points, ``mean_z`` the
    average of the ``z`` preceding saliency values; the plain spectral-residual anomaly score."""
    s = spectral_residual(x, q=q)
    padded = nn.functional.pad(s[:, None], (z, 0), mode="replicate")
    local = nn.functional.avg_pool1d(padded, z, 1)[:, 0, : s.shape[1]]
    return (s - local) / local.clamp_min(1e-8)


class SRCNN(FeatureHeadModel):
    """SR-CNN of Ren et al. (2019), Sec. 3.3: the spectral-residual saliency map of a window of ``w`` steps
    through two 1-D convolutions (kernel ``w``, ``w`` then ``2w`` channels, 'same' padding) and two fully
    connected layers, giving one anomaly logit per step of the window.

    Args:
        window: ``w``, the window length (the paper: 1440 minutes; the default suits aeon's KDD series).
        in_channels: 1 (univariate).
        num_classes: logits per window (``window``; the data sets it).
        seq_len: recorded input length (= ``window``).

    Example:
        >>> srcnn(window=16)(torch.randn(2, 1, 16)).shape
        torch.Size([2, 16])

    Reference:
        H. Ren, B. Xu, Y. Wang, C. Yi, C. Huang, X. Kou, T. Xing, M. Yang, J. Tong, Q. Zhang,
        "Time-Series Anomaly Detection Service at Microsoft", KDD 2019, Sec. 3.2-3.3, Eq. 1-6.

    Deviations:
        The paper's fully connected widths are not given; here ``2w`` then ``w`` (one logit per step).
        Each window is scaled to ``[0, 3]`` (min-max) before the spectral residual, as the authors' code
        scales its training windows (microsoft/anomalydetector, ``srcnn/generate_data.py``), so raw test
        windows meet the CNN on the scale its injected training windows had; the saliency map is scaled to
        unit mean per window before the convolutions (the code multiplies it by 100). The authors' code
        convolves with kernel 1 over ``w`` channels; this follows the paper (kernel ``w``).
    """

    def __init__(self, *, window: int = 64, in_channels: int = 1, num_classes: int | None = None, seq_len: int | None = None) -> None:
        super().__init__()
        w = int(seq_len or window)
        check_positive(window=w, in_channels=in_channels)
        self.window = w
        k = w if w % 2 else w + 1  # an odd kernel pads 'same' symmetrically
        self.features = nn.Sequential(
            nn.Conv1d(1, w, k, padding=k // 2), nn.ReLU(),  # (B, w, w)
            nn.Conv1d(w, 2 * w, k, padding=k // 2), nn.ReLU(),  # (B, 2w, w)
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * w * w, 2 * w), nn.ReLU(), nn.Linear(2 * w, num_classes or w))
        self.input_shape = (in_channels, w)
        self.num_classes = num_classes or w

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = zero_padding(x)[0][:, 0]
        lo, hi = x.amin(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)
        s = spectral_residual(3 * (x - lo) / (hi - lo + 1e-5))
        return self.features((s / s.mean(dim=1, keepdim=True).clamp_min(1e-8))[:, None])


@register_model(
    paper="Ren et al. 2019, Time-Series Anomaly Detection Service at Microsoft, KDD, Sec. 3.3",
    year=2019,
    input_size=(1, 64),
    # Hand count (w = 64, odd kernel 65): conv 1*64*65 + 64, conv 64*128*65 + 128, fc 8192*128 + 128, fc 128*64 + 64
    num_params=4_224 + 532_608 + 1_048_704 + 8_256,
    task="anomaly",
    gradcam_layer="features.2",
)
def srcnn(*, window: int = 64, in_channels: int = 1, num_classes: int | None = None, seq_len: int | None = None) -> SRCNN:
    """SR-CNN on windows of ``window`` steps. See :class:`SRCNN`."""
    return SRCNN(window=window, in_channels=in_channels, num_classes=num_classes, seq_len=seq_len)
