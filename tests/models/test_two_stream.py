import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models import model_info
from cnnkit.models.two_stream import frame_differences, two_stream

from ._beyond2d_harness import n_params


def _conv(i: int, o: int, k: int) -> int:
    return i * o * k * k + o


def _stream(cin: int, widths: tuple[int, ...], flat: int, fc: tuple[int, int], k: int) -> int:
    c1, c2, c3, c4, c5 = widths
    convs = _conv(cin, c1, 7) + _conv(c1, c2, 5) + _conv(c2, c3, 3) + _conv(c3, c4, 3) + _conv(c4, c5, 3)
    return convs + flat * fc[0] + fc[0] + fc[0] * fc[1] + fc[1] + fc[1] * k + k


def test_param_count_from_fig1():
    # Fig. 1 (CNN-M-2048): 96-256-512-512-512, full6 4096, full7 2048; 101 UCF-101 classes. 224x224 frames
    # -> conv1/2 112 -> pool 56 -> conv2/2 28 -> pool 14 -> conv3-5 14 -> pool 7: 512 x 7 x 7 into full6.
    # The temporal stream stacks the 10 differences of 11 RGB frames: 30 input channels (2L = 20 for flow).
    widths, fc = (96, 256, 512, 512, 512), (4096, 2048)
    expected = _stream(3, widths, 512 * 49, fc, 101) + _stream(30, widths, 512 * 49, fc, 101)
    with torch.device("meta"):
        model = two_stream()
    assert n_params(model) == expected == model_info("two_stream")["num_params"]
    # LRN (no weights) only after conv1 in the temporal stream, after conv1 and conv2 in the spatial one.
    lrn = lambda m: sum(isinstance(x, torch.nn.LocalResponseNorm) for x in m.modules())  # noqa: E731
    assert lrn(model.spatial) == 2 and lrn(model.temporal) == 1


def test_frame_differences_by_hand():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).view(1, 2, 3, 2, 2) ** 2
    d = frame_differences(x)
    assert d.shape == (1, 4, 2, 2)
    # channel order: (pair 1, c 0), (pair 1, c 1), (pair 2, c 0), (pair 2, c 1)
    torch.testing.assert_close(d[0, 0], x[0, 0, 1] - x[0, 0, 0])
    torch.testing.assert_close(d[0, 1], x[0, 1, 1] - x[0, 1, 0])
    torch.testing.assert_close(d[0, 3], x[0, 1, 2] - x[0, 1, 1])


def test_average_fusion_is_the_log_of_the_mean_softmax():
    torch.manual_seed(0)
    model = two_stream(variant="small", in_channels=1, num_classes=5).eval()
    x = torch.randn(3, 1, 8, 32, 32)
    with torch.no_grad():
        s, m = model.stream_scores(x)
        fused = model(x)
    ref = torch.log((s.softmax(1) + m.softmax(1)) / 2)
    torch.testing.assert_close(fused, ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(fused, model.forward_head(model.forward_features(x)))
    # A static clip has zero differences: the temporal stream sees only zeros.
    static = x[:, :, :1].expand(-1, -1, 8, -1, -1)
    assert frame_differences(static).abs().max() == 0


def test_training_mode_returns_the_stream_scores_too():
    model = two_stream(variant="small", in_channels=1, num_classes=4).train()
    out = model(torch.randn(2, 1, 8, 32, 32))
    assert isinstance(out, tuple) and [o.shape for o in out] == [(2, 4)] * 3
    (out[0].sum() + out[1].sum() + out[2].sum()).backward()
    assert all(p.grad is not None for p in model.parameters())
    model = two_stream(variant="small", in_channels=1, num_classes=4, stream_losses=False, fusion="sum").train()
    assert model(torch.randn(2, 1, 8, 32, 32)).shape == (2, 4)


def test_validation():
    with pytest.raises(ConfigError, match="variant"):
        two_stream(variant="tiny")
    with pytest.raises(ConfigError, match="fusion"):
        two_stream(fusion="max")
    with pytest.raises(ConfigError, match="at least 32x32"):
        two_stream(variant="small", input_size=(4, 16, 16))
    with pytest.raises(ConfigError, match="T >= 2"):
        two_stream(variant="small", input_size=(1, 32, 32))
