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
