"""LeNet-5 against LeCun et al. (1998): Table I, the parameter counts of Sec. II.B, Eq. (6), Eq. (7)."""

from __future__ import annotations

import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models.lenet import C3_CONNECTIONS, LeNet5, lenet5

# Table I of the paper, transcribed as printed: rows are S2 maps 0-5, columns C3 maps 0-15.
TABLE_I = """
X . . . X X X . . X X X X . X X
X X . . . X X X . . X X X X . X
X X X . . . X X X . . X . X X X
. X X X . . X X X X . . X . X X
. . X X X . . X X X X . X X . X
. . . X X X . . X X X X . X X X
"""


def _table_i() -> torch.Tensor:
    rows = [line.split() for line in TABLE_I.strip().splitlines()]
    return torch.tensor([[c == "X" for c in row] for row in rows]).t()  # (16 C3 maps, 6 S2 maps)


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_c3_connection_table_is_table_i() -> None:
    model = lenet5()
    c3 = model.features.c3[0]
    assert torch.equal(c3.connection_mask(), _table_i())
    assert int(_table_i().sum()) == 60
    # The tuple form exported by the module describes the same table.
    as_mask = torch.zeros(16, 6, dtype=torch.bool)
    for j, ins in enumerate(C3_CONNECTIONS):
        as_mask[j, list(ins)] = True
    assert torch.equal(as_mask, _table_i())


def test_c3_unconnected_maps_do_not_influence_output() -> None:
    torch.manual_seed(0)
    c3 = lenet5().features.c3[0]
    x = torch.randn(1, 6, 14, 14)
    base = c3(x)
    for i in range(6):
        bumped = x.clone()
        bumped[:, i] += 1.0
        changed = (c3(bumped) - base).abs().flatten(2).amax(2)[0] > 0  # (16,)
        assert torch.equal(changed, _table_i()[:, i])


def test_layer_parameter_counts_match_the_paper() -> None:
    # Sec. II.B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164; the RBF centres are not trained.
    model = lenet5()
    f = model.features
    assert _params(f.c1) == 6 * (5 * 5 * 1 + 1) == 156
    assert _params(f.s2) == 6 * 2 == 12
    assert _params(f.c3) == 60 * 25 + 16 == 1516
    assert _params(f.s4) == 16 * 2 == 32
    assert _params(f.c5) == 120 * (16 * 25 + 1) == 48_120
    assert _params(model.f6) == 84 * (120 + 1) == 10_164
    assert _params(model.output) == 0
    assert _params(model) == 156 + 12 + 1516 + 32 + 48_120 + 10_164 == 60_000


def test_modern_variant_count() -> None:
    # Full C3 (6*16*25 + 16) and a linear output layer instead of the RBF.
    expected = 156 + (6 * 16 * 25 + 16) + 48_120 + 10_164 + (84 * 10 + 10)
    assert _params(lenet5(variant="modern")) == expected == 61_706


def test_scaled_tanh_constants() -> None:
    act = lenet5().features.c1[1]
    x = torch.tensor([-1.0, 0.0, 1.0, 10.0])
    torch.testing.assert_close(act(x), 1.7159 * torch.tanh(2.0 / 3.0 * x))
    # Appendix A: f(+-1) = +-1 (to 4 decimals) and the asymptote is A = 1.7159.
    assert abs(act(torch.tensor(1.0)).item() - 1.0) < 1e-3
    assert act(torch.tensor(50.0)).item() == pytest.approx(1.7159)


def test_trainable_subsampling_is_sum_times_coefficient_plus_bias() -> None:
    s2 = lenet5().features.s2[0]
    with torch.no_grad():
        s2.weight.fill_(2.0)
        s2.bias.copy_(torch.arange(6.0))
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(1, 6, 1, 1)
    out = s2(x)
    # Window sums of [[0,1],[4,5]] = 10, [[2,3],[6,7]] = 18, [[8,9],[12,13]] = 42, [[10,11],[14,15]] = 50.
    sums = torch.tensor([[10.0, 18.0], [42.0, 50.0]])
    for c in range(6):
        torch.testing.assert_close(out[0, c], 2.0 * sums + c)


def test_rbf_output_is_negative_scaled_squared_distance() -> None:
    torch.manual_seed(0)
    model = lenet5(num_classes=12).eval()
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        f6 = model.f6(model.forward_features(x))  # (3, 84)
        out = model(x)
    centres = model.output.centres
    assert centres.shape == (12, 84)
    expected = torch.empty(3, 12)
    for b in range(3):
        for i in range(12):
            expected[b, i] = -sum((f6[b, j] - centres[i, j]) ** 2 for j in range(84)) / 84
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # The closest centre wins: feeding a centre itself scores 0 for its class, the maximum.
    with torch.no_grad():
        scores = model.output(centres)
    assert torch.equal(scores.argmax(1), torch.arange(12))
    torch.testing.assert_close(scores.diagonal(), torch.zeros(12))


def test_rbf_centres_are_fixed_distinct_codes() -> None:
    model = lenet5()
    centres = model.output.centres
    assert set(centres.unique().tolist()) == {-1.0, 1.0}
    assert not any(p is centres for p in model.parameters())
    assert "output.centres" in model.state_dict()  # saved with the weights
    assert torch.equal(lenet5().output.centres, centres)  # reproducible code
    hamming = (centres[:, None, :] != centres[None, :, :]).sum(-1)
    assert hamming[~torch.eye(10, dtype=torch.bool)].min() >= 20  # well separated


def test_initialisation_follows_appendix_a() -> None:
    torch.manual_seed(0)
    model = lenet5()
    c1 = model.features.c1[0].weight
    assert c1.abs().max() <= 2.4 / 25
    c3 = model.features.c3[0]
    assert c3.weight[:18].abs().max() <= 2.4 / 75 + 1e-7  # maps 0-5 have fan-in 3 * 25
    assert c3.weight[-6:].abs().max() <= 2.4 / 150 + 1e-7  # map 15 has fan-in 6 * 25


def test_in_channels_and_shapes() -> None:
    model = lenet5(in_channels=3, num_classes=5)
    assert model.input_shape == (3, 32, 32)
    assert model.forward_features(torch.zeros(2, 3, 32, 32)).shape == (2, 120, 1, 1)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 5)


def test_unknown_variant_raises() -> None:
    with pytest.raises(
        ConfigError, match="Expected variant to be one of 'lecun1998', 'modern'. Received: variant='lenet'"
    ):
        LeNet5(variant="lenet")  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["lecun1998", "modern"])
def test_trains_on_digits(variant: str) -> None:
    """Seeded: 8x8 digits scaled to 32x32, Adam 1e-3, 20 epochs -> at least 97% held-out accuracy."""
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = F.interpolate(torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0, size=32, mode="bilinear")
    y = torch.tensor(digits.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = perm[:1437], perm[1437:]
    torch.manual_seed(0)
    model = lenet5(variant=variant)  # type: ignore[arg-type]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(20):
        model.train()
        order = train[torch.randperm(len(train))]
        for i in range(0, len(order), 64):
            b = order[i : i + 64]
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x[test]).argmax(1) == y[test]).float().mean().item()
    assert accuracy >= 0.97
