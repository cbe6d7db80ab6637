"""Muon against torch's own Muon (2-D parameters) and SGD (the other groups), and its orthogonalization."""

from __future__ import annotations

import pytest
import torch

from cnnkit.config.schema import OptimConfig
from cnnkit.train.muon import Muon, newton_schulz5
from cnnkit.train.optim import build_optimizer

torch_muon = pytest.importorskip("torch.optim._muon", reason="torch.optim.Muon needs torch >= 2.9")


def test_newton_schulz_is_the_polynomial_of_the_singular_values() -> None:
    # X <- aX + b(XX^T)X + c(XX^T)^2 X keeps G's singular vectors and maps each singular value s of
    # G/||G||_F through p(s) = a s + b s^3 + c s^5: five steps are p applied five times (an SVD oracle).
    g = torch.randn(20, 70, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    u, s, vh = torch.linalg.svd(g, full_matrices=False)
    s = s / g.norm()
    for _ in range(5):
        s = 3.4445 * s - 4.7750 * s**3 + 2.0315 * s**5
    expected = u @ torch.diag(s) @ vh
    for m, ref in ((g, expected), (g.T, expected.T)):
        torch.testing.assert_close(newton_schulz5(m, dtype=torch.float64, eps=0.0), ref, rtol=1e-9, atol=1e-9)


def test_newton_schulz_matches_torch() -> None:
    g = torch.randn(48, 130, generator=torch.Generator().manual_seed(0))
    for m in (g, g.T.contiguous()):
        ours = newton_schulz5(m, steps=5)
        ref = torch_muon._zeropower_via_newtonschulz(m, (3.4445, -4.7750, 2.0315), 5, 1e-7)
        # both run in bfloat16 but round differently (torch fuses with addmm) and the iteration's slope 3.4
        # at 0 amplifies rounding: a few percent apart; the float64 form is checked exactly above
        assert ((ours.float() - ref.float()).norm() / ref.float().norm()) < 0.06


def test_newton_schulz_singular_values_near_one() -> None:
    # The quintic iteration does not converge to exactly 1: its fixed band is about [0.68, 1.13].
    g = torch.randn(64, 576, generator=torch.Generator().manual_seed(1)) * 1e3
    s = torch.linalg.svdvals(newton_schulz5(g).float())
    assert 0.6 < s.min() and s.max() < 1.25
    u, _, vh = torch.linalg.svd(g, full_matrices=False)  # same singular vectors as U V^T
    cos = torch.nn.functional.cosine_similarity(newton_schulz5(g).float().flatten(), (u @ vh).flatten(), dim=0)
    assert cos > 0.95


def test_muon_step_matches_torch_muon_on_matrices() -> None:
    gen = torch.Generator().manual_seed(2)
    w0 = torch.randn(16, 40, generator=gen)  # wide: torch's lr adjustment sqrt(max(1, A/B)) is 1
    a, b = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    ours = Muon([a], lr=0.05, momentum=0.6, nesterov=True, normalize_weights=False, ns_steps=5)
    ref = torch.optim.Muon([b], lr=0.05, momentum=0.6, nesterov=True, weight_decay=0.0)
    for _ in range(4):
        grad = torch.randn(16, 40, generator=gen)
        a.grad, b.grad = grad.clone(), grad.clone()
        ours.step()
        ref.step()
    # torch keeps momentum as an EMA, (1 - mu) times ours: the same direction, which NS5 normalizes away
    assert ((a - b).norm() / b.norm()).item() < 1e-3


def test_sgd_groups_match_torch_sgd() -> None:
    gen = torch.Generator().manual_seed(3)
    w0 = torch.randn(10, generator=gen)
    a, b = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    ours = Muon([{"params": [a], "muon": False}], lr=0.1, momentum=0.85, nesterov=True, weight_decay=1e-3)
    ref = torch.optim.SGD([b], lr=0.1, momentum=0.85, nesterov=True, weight_decay=1e-3)
    for _ in range(5):
        grad = torch.randn(10, generator=gen)
        a.grad, b.grad = grad.clone(), grad.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=1e-7)


def test_weight_normalization_and_filters_only() -> None:
    conv = torch.nn.Conv2d(4, 8, 3)
    bn = torch.nn.BatchNorm2d(8)
    net = torch.nn.Sequential(conv, bn, torch.nn.Flatten(), torch.nn.LazyLinear(3))
    net(torch.randn(2, 4, 6, 6))
    opt = build_optimizer(net, OptimConfig(name="muon", lr=0.1, muon_lr=0.2, muon_momentum=0.5))
    muon_groups = [g for g in opt.param_groups if g["muon"]]
    assert [p.shape for g in muon_groups for p in g["params"]] == [conv.weight.shape]  # the head stays on SGD
    assert muon_groups[0]["lr"] == 0.2 and muon_groups[0]["momentum"] == 0.5
    net(torch.randn(2, 4, 6, 6)).sum().backward()
    before = conv.weight.detach().clone()
    opt.step()
    # W <- W sqrt(d_out)/||W|| - lr * NS5(G): undo the step and the norm is sqrt(8)
    normed = before * 8**0.5 / before.norm()
    update = newton_schulz5(conv.weight.grad.reshape(8, -1), steps=3).view_as(before)
    torch.testing.assert_close(conv.weight.detach(), normed - 0.2 * update, rtol=1e-5, atol=1e-5)


def test_rejects_vectors_in_muon_groups() -> None:
    with pytest.raises(ValueError, match="muon=False"):
        Muon([torch.nn.Parameter(torch.zeros(3))])
