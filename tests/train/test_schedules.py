import math

import pytest
import torch

from cnnkit.config.schema import ScheduleConfig
from cnnkit.errors import UnknownNameError
from cnnkit.train.schedules import SCHEDULES, apply_lr, build_schedule


def factors(name: str, total: int = 20, spe: int = 5, lr: float = 0.1, **kw) -> list[float]:
    f = build_schedule(ScheduleConfig(name=name, **kw), lr=lr, total_steps=total, steps_per_epoch=spe)
    return [f(s) for s in range(total)]


def test_none_is_constant():
    assert factors("none") == [1.0] * 20


def test_warmup_then_constant_hand_computed():
    # warmup_epochs=0.4 with 5 steps/epoch -> 2 warm-up steps: 1/2, 2/2, then 1.
    assert factors("none", warmup_epochs=0.4)[:4] == [0.5, 1.0, 1.0, 1.0]


def test_step_decay_hand_computed():
    # gamma 0.5 every 2 epochs of 5 steps: epochs 0-1 -> 1, 2-3 -> 0.5
    f = factors("step", step_size=2, gamma=0.5)
    assert f[0] == f[9] == 1.0
    assert f[10] == f[19] == 0.5


def test_cosine_hand_computed_and_min_lr():
    f = factors("cosine", total=11, spe=11, lr=0.1, min_lr=0.01)
    m = 0.1
    for s, v in enumerate(f):
        assert v == pytest.approx(m + (1 - m) * (1 + math.cos(math.pi * s / 10)) / 2)
    assert f[0] == pytest.approx(1.0) and f[-1] == pytest.approx(0.1)


def test_cosine_matches_torch_cosine_annealing():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=15, eta_min=0.02)  # 16 steps: s = 0..15
    ours = factors("cosine", total=16, spe=4, lr=0.2, min_lr=0.02)
    for s in range(16):
        assert opt.param_groups[0]["lr"] == pytest.approx(0.2 * ours[s], rel=1e-9, abs=1e-12)
        opt.step()
        ref.step()


def test_cosine_after_warmup():
    f = factors("cosine", total=12, spe=4, warmup_epochs=0.5)  # 2 warm-up steps, then 10 cosine steps
    assert f[:3] == [0.5, 1.0, 1.0]
    assert f[7] == pytest.approx((1 + math.cos(math.pi * 5 / 9)) / 2)
    assert f[11] == pytest.approx(0.0, abs=1e-12)


def test_linear_hand_computed():
    f = factors("linear", total=5, spe=5, final_lr_fraction=0.2)
    assert f == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])


@pytest.mark.parametrize("total,pct", [(100, 0.25), (37, 0.3)])
def test_onecycle_matches_torch(total: int, pct: float):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=total, pct_start=pct, cycle_momentum=False)
    ours = factors("onecycle", total=total, spe=10, lr=0.1, pct_start=pct)
    for s in range(total):
        assert 0.1 * ours[s] == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15), s
        opt.step()
        ref.step()


def test_apply_lr_uses_base_lr_per_group():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a], "base_lr": 0.1}, {"params": [b], "base_lr": 6.4}], lr=0.1)
    apply_lr(opt, 0.5)
    assert [g["lr"] for g in opt.param_groups] == [0.05, 3.2]


def test_unknown_schedule_suggests():
    with pytest.raises(UnknownNameError, match="cosine"):
        SCHEDULES.get("cosin")
