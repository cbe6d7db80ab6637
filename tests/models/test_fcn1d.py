"""FCN, ResNet (Wang et al. 2017), InceptionTime (Fawaz et al. 2020) and MNIST-1D CNN: hand counts from the
papers' tables, and padding that changes nothing."""

from __future__ import annotations

import pytest
import torch

from cnnkit.models import create_model


def _conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_in * c_out * k + (c_out if bias else 0)


def _bn(c: int) -> int:
    return 2 * c


def _fcn(c: int, k: int) -> int:  # Wang et al. Fig. 1(b): 128-8, 256-5, 128-3, GAP, softmax
    return _conv(c, 128, 8) + _bn(128) + _conv(128, 256, 5) + _bn(256) + _conv(256, 128, 3) + _bn(128) + 128 * k + k


def _resnet(c: int, k: int) -> int:  # Fig. 1(c): blocks of 64, 128, 128 filters, kernels 8-5-3
    total, c_in = 0, c
    for f in (64, 128, 128):
        total += _conv(c_in, f, 8) + _conv(f, f, 5) + _conv(f, f, 3) + 3 * _bn(f)
        total += (_conv(c_in, f, 1) + _bn(f)) if c_in != f else _bn(f)
        c_in = f
    return total + 128 * k + k


def _inception(c: int, k: int, depth: int = 6, f: int = 32) -> int:  # Fawaz et al. 2020, Fig. 1
    total, c_in = 0, c
    for _ in range(depth):
        z = c_in
        if c_in > 1:
            total += _conv(c_in, f, 1, bias=False)
            z = f
        total += sum(_conv(z, f, kk, bias=False) for kk in (40, 20, 10)) + _conv(c_in, f, 1, bias=False) + _bn(4 * f)
        c_in = 4 * f
    res_in = c
    for _ in range(depth // 3):
        total += _conv(res_in, 4 * f, 1, bias=False) + _bn(4 * f)
        res_in = 4 * f
    return total + 4 * f * k + k


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(("c", "k"), [(1, 2), (3, 7), (12, 9)])
def test_parameter_counts_match_the_papers_tables(c: int, k: int) -> None:
    with torch.device("meta"):
        assert _count(create_model("fcn1d", in_channels=c, num_classes=k)) == _fcn(c, k)
        assert _count(create_model("resnet1d", in_channels=c, num_classes=k)) == _resnet(c, k)
        assert _count(create_model("inception_time", in_channels=c, num_classes=k)) == _inception(c, k)
    assert _fcn(1, 2) == 264_962 and _resnet(1, 2) == 504_258 and _inception(1, 2) == 420_450


def test_mnist1d_cnn_count() -> None:
    # Greydanus (2020) code: Conv1d(1,25,5,s2,p1), Conv1d(25,25,3,s2,p1) x 2, Linear(125, 10).
    assert _count(create_model("mnist1d_cnn")) == (25 * 5 + 25) + 2 * (25 * 25 * 3 + 25) + (125 * 10 + 10)


@pytest.mark.parametrize("name", ["fcn1d", "resnet1d", "inception_time", "tcn", "tdnn"])
def test_padding_does_not_change_a_series_output(name: str) -> None:
    torch.manual_seed(0)
    kwargs = {"in_channels": 2, "num_classes": 3}
    if name == "inception_time":
        kwargs.update(depth=3, filters=4, kernel_size=8)
    if name == "tcn":
        kwargs.update(num_channels=(4, 4))
    model = create_model(name, **kwargs).eval()
    x = torch.randn(3, 2, 40)
    x[0, :, 25:] = float("nan")
    x[1, :, 33:] = float("nan")
    with torch.no_grad():
        batch = model(x)
        alone = torch.cat([model(x[0:1, :, :25]), model(x[1:2, :, :33]), model(x[2:3])])
    assert torch.isfinite(batch).all()
    torch.testing.assert_close(batch, alone, atol=1e-5, rtol=1e-5)


def test_masked_pool_against_a_loop() -> None:
    from cnnkit.layers import masked_global_avg_pool1d

    x = torch.randn(4, 3, 10)
    lengths = [10, 3, 7, 1]
    for i, n in enumerate(lengths):
        x[i, :, n:] = float("nan")
    ref = torch.stack([x[i, :, :n].mean(-1) for i, n in enumerate(lengths)])
    torch.testing.assert_close(masked_global_avg_pool1d(x), ref)


def test_inception_module_kernels_and_bad_args() -> None:
    m = create_model("inception_time")
    assert m.blocks[0].kernels == [40, 20, 10]
    with pytest.raises(Exception, match="Expected num_classes >= 1"):
        create_model("fcn1d", num_classes=0)
