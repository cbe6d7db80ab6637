import pytest
import torch

from cnnkit.errors import CnnkitError
from cnnkit.explain.text import format_highlighted, token_attributions
from cnnkit.models.charcnn import charcnn
from cnnkit.models.textcnn import textcnn


@pytest.mark.parametrize("mode", ["rand", "multichannel"])
def test_integrated_gradients_are_complete(mode):
    # Sundararajan et al. (2017), Prop. 1: the attributions add up to f(x) - f(baseline); baseline: all <pad>,
    # whose embedding starts at zero only with vectors, so the baseline here is zero vectors, as used.
    torch.manual_seed(0)
    model = textcnn(vocab_size=30, embed_dim=6, num_filters=4, mode=mode).eval()
    ids = torch.randint(1, 30, (2, 10))
    scores, tgt = token_attributions(model, ids, method="integrated-gradients", steps=256)
    e = model.embed(ids)
    zero = tuple(torch.zeros_like(p) for p in e) if isinstance(e, tuple) else torch.zeros_like(e)
    with torch.no_grad():
        fx = model(ids).gather(1, tgt.view(-1, 1)).squeeze(1)
        f0 = model.forward_head(model.features_from_embedding(zero)).gather(1, tgt.view(-1, 1)).squeeze(1)
    torch.testing.assert_close(scores.sum(1).float(), (fx - f0).float(), rtol=2e-3, atol=2e-3)


def test_occlusion_is_the_score_drop_of_padding_one_token():
    torch.manual_seed(0)
    model = charcnn(seq_len=130, num_classes=3).eval()
    ids = torch.randint(2, 71, (1, 130))
    ids[0, 120:] = 0
    scores, tgt = token_attributions(model, ids, method="occlusion", target=2)
    assert tgt.tolist() == [2]
    with torch.no_grad():
        base = model(ids)[0, 2]
        for t in (0, 57, 119):
            x = ids.clone()
            x[0, t] = 0
            assert scores[0, t].item() == pytest.approx((base - model(x)[0, 2]).item(), abs=1e-5)
    assert scores[0, 120:].abs().sum() == 0  # padding is not explained


def test_errors_and_highlighting():
    with pytest.raises(CnnkitError, match="text model"):
        token_attributions(torch.nn.Linear(3, 2), torch.zeros(1, 3, dtype=torch.long))
    model = textcnn(vocab_size=10, embed_dim=4, num_filters=2)
    with pytest.raises(CnnkitError, match="--target 5"):
        token_attributions(model, torch.ones(1, 6, dtype=torch.long), target=5)
    assert format_highlighted(["a", "b", "c"], [0.1, -0.9, 0.0], top=1) == "a [[b -0.900]] c"
