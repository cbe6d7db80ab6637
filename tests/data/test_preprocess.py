import numpy as np
import pytest
import torch

from cnnkit.data import apply_preprocessing, prepare_images, resolve_fit
from cnnkit.data.preprocess import channel_stats, make_preprocessing, normalize, to_unit
from cnnkit.errors import ConfigError


@pytest.mark.parametrize(
    "fit,src,dst,expected",
    [
        ("auto", (28, 28), (32, 32), "pad"),  # LeNet-5's MNIST: 2 pixels per side
        ("auto", (8, 8), (32, 32), "resize"),  # 12 of 32 per side: too much padding
        ("auto", (24, 24), (32, 32), "pad"),  # exactly 25%
        ("auto", (64, 64), (32, 32), "resize"),
        ("auto", (32, 32), (32, 32), "none"),
        ("pad", (8, 8), (32, 32), "pad"),
        ("resize", (28, 28), (32, 32), "resize"),
    ],
)
def test_resolve_fit(fit, src, dst, expected):
    assert resolve_fit(fit, src, dst) == expected


def test_pad_refuses_larger_images():
    with pytest.raises(ConfigError, match="Expected images no larger than the model input 32x32 .* Received: 40x28"):
        resolve_fit("pad", (40, 28), (32, 32))


def test_pad_centres_like_lenet5():
    x = torch.randint(1, 256, (2, 1, 28, 28), dtype=torch.uint8)
    out = prepare_images(x, channels=1, size=(32, 32), fit="pad")
    assert out.shape == (2, 1, 32, 32) and out.dtype == torch.uint8
    assert torch.equal(out[:, :, 2:30, 2:30], x)
    assert out.sum() == x.sum().item()  # border is zero
    odd = prepare_images(torch.ones(1, 1, 3, 3, dtype=torch.uint8), channels=1, size=(6, 6), fit="pad")
    assert odd[0, 0].nonzero().min(0).values.tolist() == [1, 1]  # 1 before, 2 after


def test_channels():
    rgb = torch.tensor([255, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    gray = prepare_images(rgb, channels=1, size=(2, 2), fit="auto")
    assert gray.unique().tolist() == [76]  # round(0.299 * 255) = 76, BT.601 luminance
    g = torch.randint(0, 256, (3, 1, 4, 4), dtype=torch.uint8)
    assert torch.equal(prepare_images(g, channels=3, size=(4, 4), fit="auto"), g.expand(-1, 3, -1, -1))


def test_resize_keeps_constants_and_float_input():
    x = torch.full((1, 1, 8, 8), 77, dtype=torch.uint8)
    assert prepare_images(x, channels=1, size=(32, 32), fit="resize").unique().tolist() == [77]
    assert prepare_images(x, channels=1, size=(3, 5), fit="resize").unique().tolist() == [77]
    f = torch.full((1, 1, 8, 8), 77 / 255)
    assert torch.equal(prepare_images(f, channels=1, size=(16, 16), fit="resize"), prepare_images(x, channels=1, size=(16, 16), fit="resize"))


def test_channel_stats_against_numpy():
    x = torch.randint(0, 256, (50, 3, 5, 5), dtype=torch.uint8)
    mean, std = channel_stats(x)
    ref = x.numpy().astype(np.float64) / 255
    assert np.allclose(mean, ref.mean(axis=(0, 2, 3))) and np.allclose(std, ref.std(axis=(0, 2, 3)))
    assert channel_stats(torch.zeros(4, 1, 2, 2, dtype=torch.uint8))[1] == [1.0]  # constant: std 1


def test_apply_preprocessing_reproduces_pipeline():
    x = torch.randint(0, 256, (7, 1, 28, 28), dtype=torch.uint8)
    pre = make_preprocessing(source_shape=(1, 28, 28), input_shape=(3, 32, 32), fit="auto", mean=[0.1, 0.2, 0.3], std=[0.5, 0.6, 0.7])
    assert pre["fit"] == "pad" and pre["channels_from"] == 1 and pre["scale"] == 255.0
    stored = prepare_images(x, channels=3, size=(32, 32), fit="auto")
    expected = normalize(to_unit(stored), torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.5, 0.6, 0.7]))
    assert torch.equal(apply_preprocessing(x, pre), expected)
    assert torch.equal(apply_preprocessing(x.numpy(), pre), expected)
    assert torch.equal(apply_preprocessing(x.float() / 255, pre), expected)  # float input in [0, 1]
    assert torch.equal(apply_preprocessing(x[0], pre), expected[:1])  # one (C, H, W) image
    # Hand-computed: a black pixel of channel 0 -> (0 - 0.1) / 0.5.
    assert torch.allclose(expected[:, 0, 0, 0], torch.tensor(-0.2))
