"""conv_output_size: the article's formula, torch's own output sizes as the oracle, the fit check."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnkit.errors import ConfigError
from cnnkit.layers import conv_output_size


def test_known_values() -> None:
    assert conv_output_size(227, 11, stride=4) == 55          # AlexNet conv1
    assert conv_output_size(32, 5) == 28                       # LeNet-5 C1
    assert conv_output_size(7, 3, dilation=2, padding=2) == 7  # dilated "same"
    assert conv_output_size(10, 3, stride=2, strict=False) == 4


@pytest.mark.parametrize("size", [5, 8, 11])
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("d", [1, 2])
def test_non_strict_matches_torch(size: int, k: int, s: int, d: int) -> None:
    for p in range(0, k):
        if d * (k - 1) + 1 > size + 2 * p:
            continue
        out = F.conv1d(torch.zeros(1, 1, size), torch.zeros(1, 1, k), stride=s, padding=p, dilation=d)
        assert conv_output_size(size, k, s, p, d, strict=False) == out.shape[-1]


def test_strict_raises_with_paddings_that_fit() -> None:
    with pytest.raises(ConfigError, match=r"stride does not fit.*\(10 - 3 \+ 2\*0\) / 3 \+ 1 = 3.33.*padding=1 or 4") as err:
        conv_output_size(10, 3, stride=3)
    assert isinstance(err.value, ValueError)
    # The suggestions are right: each one fits.
    msg = str(err.value)
    fits = [int(t) for t in msg.split("padding=")[1].split(" would")[0].split(" or ")]
    assert fits == [1, 4] and all((10 + 2 * p - 3) % 3 == 0 for p in fits)


def test_strict_says_when_no_symmetric_padding_fits() -> None:
    # The classic: AlexNet's conv1 on 224 x 224 (the paper's figure) does not tile; 227 does.
    with pytest.raises(ValueError, match="54.25 is not an integer; no symmetric padding fits"):
        conv_output_size(224, 11, stride=4)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"size": 0, "kernel_size": 3}, "Received: size=0"),
    ({"size": 5, "kernel_size": 3, "stride": 0}, "Received: stride=0"),
    ({"size": 5, "kernel_size": 3, "padding": -1}, "Received: padding=-1"),
    ({"size": 5, "kernel_size": 3, "dilation": 1.5}, "Received: dilation=1.5"),
    ({"size": 3, "kernel_size": 5}, "kernel to fit in the padded input"),
])
def test_argument_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        conv_output_size(**kwargs)
