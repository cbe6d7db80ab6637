import pytest
import torch
from torch import nn

from cnnkit.config.schema import OptimConfig
from cnnkit.errors import ConfigError
from cnnkit.train.optim import OPTIMIZERS, build_optimizer, param_groups


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))


def by_name(groups):
    return {g["name"]: g for g in groups}


def test_groups_no_decay_on_biases_and_norms_and_bias_lr_scale():
    m = net()
    g = by_name(param_groups(m, OptimConfig(lr=0.1, weight_decay=5e-4, bias_lr_scale=64)))
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(g["decay"]["params"]) == {id(m[0].weight), id(m[3].weight)}
    assert ids(g["no_decay"]["params"]) == {id(m[0].bias), id(m[1].weight), id(m[3].bias)}
    assert ids(g["norm_bias"]["params"]) == {id(m[1].bias)}
    assert g["decay"]["weight_decay"] == 5e-4 and g["no_decay"]["weight_decay"] == 0 == g["norm_bias"]["weight_decay"]
    assert g["norm_bias"]["base_lr"] == pytest.approx(6.4) and g["decay"]["base_lr"] == 0.1


def test_decay_bias_and_norm_puts_everything_in_decay():
    m = net()
    groups = by_name(param_groups(m, OptimConfig(weight_decay=1e-3, decay_bias_and_norm=True)))
    assert all(g["weight_decay"] == 1e-3 for g in groups.values())
    assert sum(len(g["params"]) for g in groups.values()) == len(list(m.parameters()))


def test_frozen_parameters_left_out_and_all_frozen_is_an_error():
    m = net()
    m[0].weight.requires_grad_(False)
    total = sum(len(g["params"]) for g in param_groups(m, OptimConfig()))
    assert total == len(list(m.parameters())) - 1
    for p in m.parameters():
        p.requires_grad_(False)
    with pytest.raises(ConfigError, match="frozen"):
        build_optimizer(m, OptimConfig())


@pytest.mark.parametrize(
    "name,ref",
    [
        ("sgd", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        ("adam", lambda ps: torch.optim.Adam(ps, lr=0.1, weight_decay=0.01)),
        ("adamw", lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=0.01)),
        ("rmsprop", lambda ps: torch.optim.RMSprop(ps, lr=0.1, momentum=0.9, weight_decay=0.01)),
        ("adadelta", lambda ps: torch.optim.Adadelta(ps, lr=0.1, rho=0.9, eps=1e-8, weight_decay=0.01)),
    ],
)
def test_each_optimizer_matches_torch_on_a_weight(name, ref):
    # Only a weight matrix (decay group), so the torch reference with one global weight_decay is exact.
    w0 = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    ours = nn.Linear(4, 3, bias=False)
    theirs = nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        ours.weight.copy_(w0)
        theirs.weight.copy_(w0)
    opt = build_optimizer(ours, OptimConfig(name=name, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01))
    ref_opt = ref(theirs.parameters())
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    for _ in range(3):
        for m, o in ((ours, opt), (theirs, ref_opt)):
            o.zero_grad()
            m(x).pow(2).sum().backward()
            o.step()
    torch.testing.assert_close(ours.weight, theirs.weight, rtol=0, atol=0)


def test_registry_names():
    assert OPTIMIZERS.names() == ["adadelta", "adam", "adamw", "muon", "rmsprop", "sgd"]
