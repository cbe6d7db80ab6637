import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models import model_info
from cnnkit.models.textcnn import textcnn

from ._beyond2d_harness import check_model, n_params


def test_param_count_from_section_3_1():
    # Kim 2014, Sec. 3.1: 300-d embedding, widths 3, 4, 5 x 100 maps, 2 classes; vocab 20,000.
    vocab, k, maps = 20_000, 300, 100
    hand = vocab * k + sum(maps * k * h + maps for h in (3, 4, 5)) + (3 * maps * 2 + 2)
    assert hand == 6_360_902
    assert n_params(textcnn()) == hand == model_info("textcnn")["num_params"]


def test_forward_backward_and_split():
    torch.manual_seed(0)
    model = textcnn(vocab_size=30, embed_dim=8, num_classes=3)
    check_model(model, torch.randint(0, 30, (4, 12)), (4, 3))
    assert model.input_dtype == torch.long


def test_features_are_max_over_time_of_each_window():
    torch.manual_seed(0)
    model = textcnn(vocab_size=20, embed_dim=5).eval()
    ids = torch.randint(0, 20, (1, 9))
    feats = model.forward_features(ids)
    e = model.embedding.weight[ids[0]]  # (T, k)
    conv = model.convs[0]  # width 3, naive loop over windows
    h = conv.kernel_size[0]
    want = []
    for f in range(conv.out_channels):
        scores = [
            torch.relu((conv.weight[f] * e[t : t + h].T).sum() + conv.bias[f]) for t in range(9 - h + 1)
        ]
        want.append(torch.stack(scores).max())
    torch.testing.assert_close(feats[0, : conv.out_channels], torch.stack(want), rtol=1e-5, atol=1e-6)


def test_any_sentence_length():
    model = textcnn(vocab_size=20, embed_dim=4).eval()
    assert model(torch.randint(0, 20, (2, 5))).shape == model(torch.randint(0, 20, (2, 40))).shape == (2, 2)


def test_static_embedding_is_frozen():
    model = textcnn(vocab_size=20, embed_dim=4, freeze_embedding=True)
    assert not model.embedding.weight.requires_grad


def test_validation():
    with pytest.raises(ConfigError, match="Expected 0 <= p < 1"):
        textcnn(p=-0.1)
    with pytest.raises(ConfigError, match="vocab_size"):
        textcnn(vocab_size=0)
