"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998), as published and in its common modern form.

Reference: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11), 1998, Section II.B (architecture), Table I (C3 connections) and
Appendix A (squashing function, initialisation).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, check_int
from ._common import FeatureHeadModel, set_input_shape
from ._registry import register_model

__all__ = ["LeNet5", "lenet5", "C3_CONNECTIONS"]

# Table I of LeCun et al. (1998): which S2 maps (rows 0-5) each C3 map (columns 0-15) reads.
# Maps 0-5 read 3 contiguous S2 maps, 6-11 read 4 contiguous, 12-14 read 4 non-contiguous, 15 reads all.
# 18 + 36 + 6 = 60 connections, each a 5x5 kernel: 60 * 25 + 16 biases = 1,516 trainable parameters.
C3_CONNECTIONS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip


class _ScaledTanh(nn.Module):
    """``f(a) = A tanh(S a)`` with A = 1.7159, S = 2/3 (Eq. 6 and Appendix A of LeCun et al. 1998).

    The constants make f(1) = 1 and f(-1) = -1 and put the maximum of the second derivative at +-1, so
    targets of +-1 (the RBF codes) lie in the well-conditioned part of the curve.
    """

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: Tensor) -> Tensor:
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.4g}"


class _TrainableSubsample2d(nn.Module):
    """S2/S4: sum over non-overlapping 2x2 windows, times a trainable coefficient, plus a trainable bias.

    One coefficient and one bias per feature map (Section II.B: "each unit ... adds four inputs,
    multiplies by a trainable coefficient, and adds a trainable bias"), so 2 parameters per map. The
    squashing function is applied by the caller.
    """

    def __init__(self, channels: int, kernel_size: int = 2) -> None:
        super().__init__()
        self.channels = channels
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Appendix A: uniform in +-2.4 / F_i, F_i = fan-in (here the 4 summed inputs).
        bound = 2.4 / self.kernel_size**2
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        k = self.kernel_size
        window_sum = F.avg_pool2d(x, k) * (k * k)  # a sum, not the mean: the paper "adds four inputs"
        return window_sum * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.kernel_size}, stride={self.kernel_size}"


class _PartialConv2d(nn.Module):
    """A convolution in which output map ``j`` reads only the input maps listed in ``connections[j]``.

    Only the kernels of existing connections are parameters (shape ``(n_connections, k, k)``), so the
    parameter count is the paper's; at run time they are scattered into a dense, mostly-zero weight and
    one ``conv2d`` does the work.
    """

    def __init__(self, in_channels: int, connections: tuple[tuple[int, ...], ...], kernel_size: int) -> None:
        super().__init__()
        for j, ins in enumerate(connections):
            if not ins or any(not 0 <= i < in_channels for i in ins) or len(set(ins)) != len(ins):
                raise ValueError(
                    f"Expected connections[{j}] to list distinct input maps in [0, {in_channels}). Received: {ins!r}"
                )
        self.in_channels = in_channels
        self.out_channels = len(connections)
        self.kernel_size = kernel_size
        out_idx = [j for j, ins in enumerate(connections) for _ in ins]
        in_idx = [i for ins in connections for i in ins]
        self.register_buffer("out_index", torch.tensor(out_idx, dtype=torch.long), persistent=False)
        self.register_buffer("in_index", torch.tensor(in_idx, dtype=torch.long), persistent=False)
        self.weight = nn.Parameter(torch.empty(len(in_idx), kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(self.out_channels))
        self._fan_in = [len(ins) * kernel_size**2 for ins in connections]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Appendix A: uniform in +-2.4 / F_i, with F_i the fan-in of the unit the weight feeds.
        with torch.no_grad():
            k = 0
            for j, fan_in in enumerate(self._fan_in):
                n = fan_in // self.kernel_size**2
                nn.init.uniform_(self.weight[k : k + n], -2.4 / fan_in, 2.4 / fan_in)
                nn.init.uniform_(self.bias[j : j + 1], -2.4 / fan_in, 2.4 / fan_in)
                k += n

    def connection_mask(self) -> Tensor:
        """Boolean ``(out_channels, in_channels)`` table: True where output map j reads input map i."""
        mask = torch.zeros(self.out_channels, self.in_channels, dtype=torch.bool, device=self.weight.device)
        mask[self.out_index, self.in_index] = True  # type: ignore[index]
        return mask

    def dense_weight(self) -> Tensor:
        k = self.kernel_size
        dense = self.weight.new_zeros(self.out_channels, self.in_channels, k, k)
        return dense.index_put((self.out_index, self.in_index), self.weight)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"connections={self.weight.shape[0]}"
        )


class _EuclideanRBF(nn.Module):
    """Output layer of Euclidean radial basis units, Eq. (7): ``y_i = sum_j (x_j - w_ij)^2``.

    The centres ``w_i`` are fixed (a buffer, not a parameter) codes of +-1. Returns ``-scale * y_i``
    (``scale = 1 / in_features`` by default): a smaller distance gives a larger score, so ``argmax``
    predicts, and softmax cross-entropy on the output is the paper's MAP criterion, Eq. (9), at
    temperature ``1 / scale`` and without its constant "rubbish class" term ``e^{-j}``.
    """

    def __init__(self, in_features: int, num_classes: int, *, scale: float | None = None, seed: int = 0) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes
        self.seed = seed
        # Squared distances between +-1 codes of 84 bits are ~170: as softmax logits they are so peaked
        # that plain SGD diverges. Dividing by the code length (the mean squared distance per unit) is a
        # softmax temperature; it leaves the ranking, hence argmax, unchanged.
        self.scale = 1.0 / in_features if scale is None else float(scale)
        # The paper draws 7x12 stylised bitmaps of the characters; any well-separated +-1 codes do the same
        # job. A fixed seed makes the code reproducible and identical across runs and checkpoints.
        gen = torch.Generator().manual_seed(seed)
        codes = torch.randint(0, 2, (num_classes, in_features), generator=gen, device="cpu").float() * 2 - 1
        # empty() follows the default device (meta for parameter counting), copy_() fills it from the CPU.
        self.register_buffer("centres", torch.empty(num_classes, in_features))
        with torch.no_grad():
            self.centres.copy_(codes)  # type: ignore[operator]

    def forward(self, x: Tensor) -> Tensor:
        # ||x||^2 - 2 x.w + ||w||^2, written out so that it is one matmul rather than a (B, K, D) tensor.
        sq = x.pow(2).sum(1, keepdim=True) - 2 * x @ self.centres.t() + self.centres.pow(2).sum(1)  # type: ignore[operator]
        return -sq * self.scale

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, num_classes={self.num_classes}, scale={self.scale:.4g}, "
            f"centres=fixed +-1 (seed={self.seed})"
        )


class LeNet5(FeatureHeadModel):
    """LeNet-5, Section II.B of LeCun et al. (1998).

    ``variant="lecun1998"`` (32x32 input)::

        C1  conv 6@5x5              -> (B, 6, 28, 28)     156 params
        S2  2x2 trainable subsample -> (B, 6, 14, 14)      12
        C3  16@5x5, Table I (60)    -> (B, 16, 10, 10)  1,516
        S4  2x2 trainable subsample -> (B, 16, 5, 5)       32
        C5  conv 120@5x5            -> (B, 120, 1, 1)  48,120
        F6  linear 84               -> (B, 84)         10,164
        RBF 10 fixed centres        -> (B, 10)              0   (total 60,000)

    every layer up to F6 followed by the squashing function ``1.7159 tanh(2a/3)``.

    ``variant="modern"``: ReLU, 2x2 max-pooling, a fully connected C3 (2,416 params), and a linear output
    layer (61,706 parameters for 10 classes).

    Args:
        variant: ``"lecun1998"`` or ``"modern"``.
        num_classes: number of output units.
        in_channels: input channels (C1 is the only layer that depends on it).

    Shape:
        Input ``(B, in_channels, 32, 32)``; output ``(B, num_classes)``: for ``"lecun1998"`` minus the
        mean squared Euclidean distance to each class centre (larger is better), for ``"modern"`` logits.

    Deviations (``"lecun1998"``):
        - The RBF centres are a fixed, seeded random +-1 code rather than the paper's 7x12 bitmaps of the
          characters; they are a non-trainable buffer, as in the paper ("chosen by hand and kept fixed").
        - The output is ``-y_i / 84`` rather than the distance ``y_i``, so argmax and cross-entropy apply
          directly. Cross-entropy on ``-y_i`` is exactly Eq. (9) without the rubbish-class constant ``j``;
          the 1/84 is a softmax temperature without which SGD at usual learning rates diverges (the paper
          used per-parameter step sizes from a diagonal Hessian estimate instead).
        - C5 is a 5x5 convolution as in the paper; it reduces to 1x1 only for 32x32 input.

    Example:
        >>> model = LeNet5(variant="lecun1998")
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        *,
        variant: Literal["lecun1998", "modern"] = "lecun1998",
        num_classes: int = 10,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        check_choice(variant, "variant", ("lecun1998", "modern"))
        check_int(num_classes, "num_classes")
        check_int(in_channels, "in_channels")
        self.variant = variant
        self.num_classes = num_classes

        if variant == "lecun1998":
            act: type[nn.Module] = _ScaledTanh
            c3: nn.Module = _PartialConv2d(6, C3_CONNECTIONS, kernel_size=5)

            def pool(channels: int) -> nn.Module:
                return nn.Sequential(_TrainableSubsample2d(channels), act())
        else:
            act = nn.ReLU
            c3 = nn.Conv2d(6, 16, kernel_size=5)

            def pool(channels: int) -> nn.Module:
                return nn.MaxPool2d(2)

        self.features = nn.Sequential(
            OrderedDict(
                c1=nn.Sequential(nn.Conv2d(in_channels, 6, kernel_size=5), act()),  # (B, 6, 28, 28)
                s2=pool(6),  # (B, 6, 14, 14)
                c3=nn.Sequential(c3, act()),  # (B, 16, 10, 10)
                s4=pool(16),  # (B, 16, 5, 5)
                c5=nn.Sequential(nn.Conv2d(16, 120, kernel_size=5), act()),  # (B, 120, 1, 1)
            )
        )
        self.f6 = nn.Sequential(nn.Flatten(1), nn.Linear(120, 84), act())  # (B, 84)
        self.output: nn.Module = (
            _EuclideanRBF(84, num_classes) if variant == "lecun1998" else nn.Linear(84, num_classes)
        )
        if variant == "lecun1998":
            self._init_lecun()

    def _init_lecun(self) -> None:
        # Appendix A: weights uniform in +-2.4/F_i (F_i = fan-in), which keeps the total input of each
        # sigmoid unit in the range where the squashing function is not saturated.
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                fan_in = m.weight[0].numel()
                nn.init.uniform_(m.weight, -2.4 / fan_in, 2.4 / fan_in)
                if m.bias is not None:
                    nn.init.uniform_(m.bias, -2.4 / fan_in, 2.4 / fan_in)

    def forward_features(self, x: Tensor) -> Tensor:
        """C1 ... C5: ``(B, C, 32, 32) -> (B, 120, 1, 1)``."""
        return self.features(x)

    def forward_head(self, x: Tensor) -> Tensor:
        """F6 and the output layer: ``(B, 120, 1, 1) -> (B, num_classes)``."""
        return self.output(self.f6(x))


@register_model(
    paper="LeCun et al. 1998, Gradient-based learning applied to document recognition, Sec. II.B",
    year=1998,
    input_size=(1, 32, 32),
    num_params=60_000,
    gradcam_layer="features.c3",
)
def lenet5(
    *,
    variant: Literal["lecun1998", "modern"] = "lecun1998",
    num_classes: int = 10,
    in_channels: int = 1,
) -> LeNet5:
    """LeNet-5 (see :class:`LeNet5`); 60,000 trainable parameters for ``variant="lecun1998"``."""
    model = LeNet5(variant=variant, num_classes=num_classes, in_channels=in_channels)
    return set_input_shape(model, (in_channels, 32, 32))
