import pytest
import torch
from torch import nn

from cnnkit.train import ModelEMA


def test_ema_matches_hand_computed_average_with_warmup():
    net = nn.Linear(1, 1, bias=False)
    bn = nn.BatchNorm1d(1)
    model = nn.Sequential(net, bn)
    with torch.no_grad():
        net.weight.fill_(0.0)
    ema = ModelEMA(model, decay=0.9)
    expected = 0.0
    for n, w in enumerate([1.0, 2.0, 3.0, 4.0], start=1):
        with torch.no_grad():
            net.weight.fill_(w)
        bn.num_batches_tracked += 1
        ema.update(model)
        d = min(0.9, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * w
    assert ema.module[0].weight.item() == pytest.approx(expected)
    assert ema.module[1].num_batches_tracked.item() == 4  # integer buffers are copied


def test_every_steps():
    net = nn.Linear(1, 1, bias=False)
    ema = ModelEMA(net, decay=0.5, every_steps=2)
    ema.update(net)
    assert ema.updates == 0
    ema.update(net)
    assert ema.updates == 1


@pytest.mark.parametrize("kw,msg", [({"decay": 1.0}, "0 < decay < 1"), ({"every_steps": 0}, "every_steps >= 1")])
def test_validation(kw, msg):
    with pytest.raises(ValueError, match=msg):
        ModelEMA(nn.Linear(1, 1), **kw)


def test_cubic_ramp_and_lookahead_match_airbench_by_hand():
    # airbench94's LookaheadState: every k steps ema <- lerp(ema, w, 1 - d), d = decay * (s / S)^3, then w <- ema
    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    ema = ModelEMA(net, decay=0.8, every_steps=2, ramp="cubic", total_steps=8, lookahead=True)
    avg = 0.0
    w = 0.0
    for s in range(1, 9):
        w += 1.0  # the optimizer's step
        with torch.no_grad():
            net.weight.fill_(w)
        ema.update(net)
        if s % 2 == 0:
            d = 0.8 * (s / 8) ** 3
            avg = d * avg + (1 - d) * w
            w = avg  # lookahead: the training weights jump to the average
        assert net.weight.item() == pytest.approx(w)
        assert ema.module.weight.item() == pytest.approx(avg if s >= 2 else 0.0)
    assert ema.updates == 4


def test_cubic_ramp_needs_total_steps():
    with pytest.raises(ValueError, match="total_steps"):
        ModelEMA(nn.Linear(1, 1), ramp="cubic")
