import pytest
import torch

from cnnkit.data.tokenize import ZHANG2015_ALPHABET
from cnnkit.errors import ConfigError
from cnnkit.models import model_info
from cnnkit.models.charcnn import charcnn

from ._beyond2d_harness import n_params


def test_param_count_from_tables_1_and_2():
    # Small model: 256 features, kernels 7, 7, 3, 3, 3, 3; 34 frames at l0 = 1014; FC 1024, 1024, 4 classes.
    c = len(set(ZHANG2015_ALPHABET))
    assert c == 69 == len(ZHANG2015_ALPHABET)
    conv = (c * 256 * 7 + 256) + (256 * 256 * 7 + 256) + 4 * (256 * 256 * 3 + 256)
    fc = (256 * 34 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 4 + 4)
    with torch.device("meta"):
        model = charcnn()
    assert n_params(model) == conv + fc == model_info("charcnn")["num_params"]


def test_frames_are_l0_minus_96_over_27():
    model = charcnn().eval()
    assert model.features(model.embed(torch.randint(0, 71, (1, 1014)))).shape == (1, 256, (1014 - 96) // 27)


def test_pad_and_unknown_are_zero_vectors_and_weights_are_gaussian_005():
    torch.manual_seed(0)
    model = charcnn(seq_len=130, num_classes=2)
    e = model.embed(torch.tensor([[0, 1, 2, 70]]))  # <pad>, <unk>, 'a', the new line
    assert e.shape == (1, 69, 4)
    assert e[0, :, 0].sum() == 0 and e[0, :, 1].sum() == 0 and e[0, 0, 2] == 1 and e[0, 68, 3] == 1
    w = model.features[0].weight
    assert abs(w.std().item() - 0.05) < 0.003 and abs(w.mean().item()) < 0.003


def test_validation():
    with pytest.raises(ConfigError, match="seq_len >= 123"):
        charcnn(seq_len=100)
    with pytest.raises(ConfigError, match="variant"):
        charcnn(variant="huge")
    assert charcnn(seq_len=123)(torch.zeros(1, 123, dtype=torch.long)).shape == (1, 4)
