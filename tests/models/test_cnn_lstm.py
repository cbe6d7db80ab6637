import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models import model_info
from cnnkit.models.cnn_lstm import cnn_lstm

from ._beyond2d_harness import check_model, n_params


def test_param_count_by_hand():
    # Frame CNN: 3x3 convs 3->16->32->64 without bias, batch norm (weight + bias) after each;
    # LSTM: 4 gates x hidden x (input + hidden) weights + two bias vectors of 4 x hidden; head 64 -> 101.
    cnn = 3 * 16 * 9 + 16 * 32 * 9 + 32 * 64 * 9 + 2 * (16 + 32 + 64)
    lstm = 4 * 64 * (64 + 64) + 2 * 4 * 64
    head = 64 * 101 + 101
    model = cnn_lstm()
    assert n_params(model) == cnn + lstm + head == model_info("cnn_lstm")["num_params"]


def test_forward_backward_and_split():
    torch.manual_seed(0)
    check_model(cnn_lstm(num_classes=4, in_channels=1), torch.randn(2, 1, 6, 16, 16), (2, 4))
    check_model(cnn_lstm(num_classes=4, in_channels=1, readout="last", num_layers=2), torch.randn(2, 1, 6, 16, 16), (2, 4))


def test_readouts_against_a_hand_loop():
    torch.manual_seed(0)
    model = cnn_lstm(num_classes=3, in_channels=1).eval()
    x = torch.randn(2, 1, 5, 16, 16)
    with torch.no_grad():
        feats = torch.stack([model.frame_cnn(x[:, :, t]) for t in range(5)], 1)  # one frame at a time
        h = torch.zeros(1, 2, 64)
        c = torch.zeros(1, 2, 64)
        steps = []
        for t in range(5):
            out, (h, c) = model.lstm(feats[:, t : t + 1], (h, c))
            steps.append(model.head(out[:, 0]))
        torch.testing.assert_close(model(x), torch.stack(steps, 1).mean(1), atol=1e-5, rtol=1e-5)
        model.readout = "last"
        torch.testing.assert_close(model(x), steps[-1], atol=1e-5, rtol=1e-5)


def test_frame_order_matters():
    torch.manual_seed(0)
    model = cnn_lstm(num_classes=3, in_channels=1, readout="last").eval()
    x = torch.randn(1, 1, 5, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x.flip(2)))


def test_validation():
    with pytest.raises(ConfigError, match="readout"):
        cnn_lstm(readout="max")
    with pytest.raises(ConfigError, match="widths"):
        cnn_lstm(widths=())


def test_single_frame_baseline_sees_only_the_middle_frame():
    from cnnkit.models.single_frame import single_frame

    model = single_frame(num_classes=3, in_channels=1).eval()
    cnn = 1 * 16 * 9 + 16 * 32 * 9 + 32 * 64 * 9 + 2 * (16 + 32 + 64)
    assert n_params(model) == cnn + 64 * 3 + 3
    assert n_params(single_frame()) == model_info("single_frame")["num_params"] == cnn + 2 * 16 * 9 + 64 * 101 + 101
    x = torch.randn(2, 1, 5, 16, 16)
    y = x.clone()
    y[:, :, [0, 1, 3, 4]] = torch.randn(2, 1, 4, 16, 16)  # every frame but the middle one changed
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(y))
