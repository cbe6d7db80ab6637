"""Shape arithmetic: how many neurons "fit" along one axis of a convolution or pooling layer."""

from __future__ import annotations

from ..errors import ConfigError

__all__ = ["conv_output_size"]


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                     strict: bool = True) -> int:
    """Output length ``(W - K + 2P) / S + 1`` of a convolution or pooling along one axis.

    The article's formula (its text lost the equation; see feature-matrix note D1), with the dilated
    kernel extent ``K = dilation * (kernel_size - 1) + 1``.

    Args:
        size: input length ``W``.
        kernel_size: kernel length before dilation.
        stride: step ``S`` between windows.
        padding: zero padding ``P`` on *each* side.
        dilation: spacing between kernel taps.
        strict: when the division is not exact, raise instead of flooring like torch does.

    Returns:
        The number of output positions.

    Raises:
        ConfigError: (a ``ValueError``) for non-positive arguments, a kernel larger than the padded
            input, or, when ``strict``, a stride that does not tile the input; the message lists the
            paddings that would make it fit.

    Example:
        >>> conv_output_size(227, 11, stride=4)  # AlexNet conv1
        55
        >>> conv_output_size(10, 3, stride=2, strict=False)  # torch floors (10 - 3) / 2 + 1
        4

    Reference:
        Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", arXiv:1603.07285,
        relationship 15 (with dilation).
    """
    for name, value, low in (("size", size, 1), ("kernel_size", kernel_size, 1), ("stride", stride, 1),
                             ("padding", padding, 0), ("dilation", dilation, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"Expected {name} to be an integer >= {low}. Received: {name}={value!r}")
    extent = dilation * (kernel_size - 1) + 1
    span = size + 2 * padding - extent
    if span < 0:
        raise ConfigError(
            f"Expected the (dilated) kernel to fit in the padded input: {extent} <= {size} + 2*{padding}. "
            f"Received: size={size}, kernel_size={kernel_size}, dilation={dilation}, padding={padding}")
    if strict and span % stride:
        # P ranges over one full period of the stride (2P mod S repeats with period S), starting at 0.
        fits = [p for p in range(0, max(stride, 1) + extent) if (size + 2 * p - extent) % stride == 0][:3]
        hint = (f"padding={' or '.join(map(str, fits))} would fit" if fits else
                f"no symmetric padding fits (W - K = {size - extent} is odd and the stride is even); "
                f"crop or pad the input to an odd/even length, or change the stride")
        raise ConfigError(
            f"The stride does not fit: (W - K + 2P) / S + 1 = ({size} - {extent} + 2*{padding}) / {stride} + 1 "
            f"= {span / stride + 1:g} is not an integer; {hint}. Pass strict=False to floor like torch. "
            f"Received: size={size}, kernel_size={kernel_size}, stride={stride}, padding={padding}, "
            f"dilation={dilation}")
    return span // stride + 1
