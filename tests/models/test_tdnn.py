import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models import create_model, model_info
from cnnkit.models.tdnn import tdnn

from ._beyond2d_harness import check_model, n_params


def test_param_count_from_fig2_of_the_paper():
    # Waibel et al. 1989, Fig. 2: 16 coefficients x 3-frame window -> 8 units; 8 x 5-frame window -> 3.
    hand = (16 * 3 * 8 + 8) + (8 * 5 * 3 + 3)
    assert hand == 515
    assert n_params(tdnn()) == hand == model_info("tdnn")["num_params"]


def test_shapes_follow_the_paper():
    model = tdnn()
    assert model.input_shape == (16, 15)
    h = model.forward_features(torch.randn(2, 16, 15))
    assert h.shape == (2, 3, 9)  # 15 -> 13 -> 9 frames


def test_forward_backward_and_split():
    torch.manual_seed(0)
    check_model(tdnn(num_classes=4), torch.randn(3, 16, 15), (3, 4))


def test_output_is_the_sum_over_time_of_hidden_layer_2():
    model = tdnn().eval()
    x = torch.randn(2, 16, 15)
    torch.testing.assert_close(model(x), model.features(x).sum(-1))


def test_shift_invariance():
    # A pattern inside a constant background, shifted in time, gives the same sum over time: the
    # property the TDNN was designed for.
    torch.manual_seed(1)
    model = tdnn().eval().double()
    pattern = torch.randn(1, 16, 4, dtype=torch.float64)
    a = torch.zeros(1, 16, 30, dtype=torch.float64)
    b = torch.zeros(1, 16, 30, dtype=torch.float64)
    a[..., 10:14] = pattern
    b[..., 14:18] = pattern
    torch.testing.assert_close(model(a), model(b))


def test_registry_and_validation():
    assert isinstance(create_model("tdnn"), torch.nn.Module)
    assert model_info("tdnn")["task"] == "sequence"
    with pytest.raises(ConfigError, match="Expected num_classes >= 1"):
        tdnn(num_classes=0)
