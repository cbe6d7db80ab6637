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


def test_multichannel_adds_one_filter_over_a_fixed_and_a_tuned_copy():
    torch.manual_seed(0)
    model = textcnn(vocab_size=20, embed_dim=4, mode="multichannel").eval()
    assert model.static_embedding is not None and not model.static_embedding.weight.requires_grad
    assert model.embedding.weight.requires_grad
    with torch.no_grad():
        model.embedding.weight.add_(0.1)  # the tuned copy moves away from the fixed one
    ids = torch.randint(0, 20, (2, 9))
    e1 = model.embedding(ids).transpose(1, 2)
    e2 = model.static_embedding(ids).transpose(1, 2)
    conv = model.convs[1]
    want = torch.relu(conv(e1) + conv(e2) - conv.bias[:, None]).amax(-1)
    got = model.forward_features(ids)[:, conv.out_channels : 2 * conv.out_channels]
    torch.testing.assert_close(got, want)


def test_pretrained_vectors_from_a_glove_file(tmp_path):
    path = tmp_path / "vec.txt"
    path.write_text("good 1 2 3 4\nBad -1 -2 -3 -4\n")
    vocab = ["<pad>", "<unk>", "good", "bad", "meh"]
    torch.manual_seed(0)
    model = textcnn(vocab_size=5, embed_dim=4, mode="static", embeddings=str(path), vocab=vocab)
    w = model.embedding.weight
    assert torch.equal(w[2], torch.tensor([1.0, 2, 3, 4])) and torch.equal(w[3], torch.tensor([-1.0, -2, -3, -4]))
    assert torch.equal(w[0], torch.zeros(4)) and w[4].abs().max() <= 0.25 and w[4].abs().sum() > 0
    assert not w.requires_grad
    with pytest.raises(ConfigError, match="embed_dim=4"):
        textcnn(vocab_size=5, embed_dim=8, embeddings=str(path), vocab=vocab)
    with pytest.raises(ConfigError, match="model.embeddings"):
        textcnn(vocab_size=5, embed_dim=4, mode="static", vocab=vocab)


def test_modes_are_checked():
    with pytest.raises(ConfigError, match="mode"):
        textcnn(mode="dynamic")
