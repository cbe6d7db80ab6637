"""Receptive fields against hand values from the papers and against back-propagated gradient support."""

from pathlib import Path

import pytest
import torch
from torch import nn

from cnnkit.analysis import summarize
from cnnkit.models import build_from_spec, create_model, list_models

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "models"


def _rf(summary, name):
    row = summary.row(name)
    assert row.receptive_field is not None, row.receptive_field_note
    return [(a["size"], a["jump"], a["start"]) for a in row.receptive_field]


def _alexnet_2012(width: int = 2) -> nn.Sequential:
    # Krizhevsky et al. 2012, Sec. 3.5 with the 227x227 input: conv1 11x11/4, pool 3x3/2, conv2 5x5 p2,
    # pool 3x3/2, conv3-5 3x3 p1, pool5 3x3/2. Widths do not affect receptive fields; keep them tiny.
    c = width
    return nn.Sequential(
        nn.Conv2d(3, c, 11, 4), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(c, c, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
        nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
    )  # fmt: skip


def _vgg16(width: int = 2) -> nn.Sequential:
    # Simonyan & Zisserman 2015, Table 1 configuration D: 2-2-3-3-3 3x3 convs (p1), 2x2/2 max-pools.
    layers: list[nn.Module] = []
    c_in = 3
    for n in (2, 2, 3, 3, 3):
        for _ in range(n):
            layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU()]
            c_in = width
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


def test_lenet5_c5_sees_the_whole_32x32_input():
    # C1 5 -> S2 6 (jump 2) -> C3 6 + 4*2 = 14 -> S4 16 (jump 4) -> C5 16 + 4*4 = 32.
    s = summarize(build_from_spec(CONFIGS / "lenet5.yaml"), (1, 32, 32))
    assert _rf(s, "features.0") == [(5, 1, 2)] * 2
    assert _rf(s, "features.2") == [(6, 2, 2.5)] * 2
    assert _rf(s, "features.3") == [(14, 2, 6.5)] * 2
    assert _rf(s, "features.5") == [(16, 4, 7.5)] * 2
    assert _rf(s, "features.6") == [(32, 4, 15.5)] * 2  # centred on the 32x32 input: (0 + 31) / 2


def test_lenet5_zoo_model_c5():
    if "lenet5" not in list_models():
        pytest.skip("lenet5 not registered")
    model = create_model("lenet5")
    s = summarize(model, model.input_shape)
    sizes = [r.receptive_field[0]["size"] for r in s.layers if r.receptive_field and len(r.output_shape) == 3]
    assert max(sizes) == 32


def test_alexnet_conv5_and_pool5():
    s = summarize(_alexnet_2012(), (3, 227, 227))
    assert _rf(s, "0")[0][:2] == (11, 4)
    assert _rf(s, "2")[0][:2] == (19, 8)
    assert _rf(s, "5")[0][:2] == (67, 16)
    assert _rf(s, "10")[0][:2] == (163, 16)  # conv5
    assert _rf(s, "12")[0] == (195, 32, 33)  # pool5: 195 pixels, jump 32


def test_vgg16_conv5_3_and_pool5():
    s = summarize(_vgg16(), (3, 224, 224))
    conv_rows = [r for r in s.layers if r.type == "Conv2d"]
    pool_rows = [r for r in s.layers if r.type == "MaxPool2d"]
    assert [r.receptive_field[0]["size"] for r in conv_rows] == [3, 5, 10, 14, 24, 32, 40, 60, 76, 92, 132, 164, 196]
    assert [r.receptive_field[0]["size"] for r in pool_rows] == [6, 16, 44, 100, 212]
    assert pool_rows[-1].receptive_field[0]["jump"] == 32


@pytest.mark.slow  # full-width AlexNet / VGG-16: hundreds of MB of weights and GFLOPs of forward
@pytest.mark.parametrize("name", ["alexnet", "vgg16"])
def test_zoo_models_when_registered(name):
    if name not in list_models():
        pytest.skip(f"{name} not registered yet")
    kwargs = {"variant": "krizhevsky2012"} if name == "alexnet" else {}
    model = create_model(name, **kwargs)
    shape = (3, 227, 227) if name == "alexnet" else (3, 224, 224)
    s = summarize(model, shape, allow_floor=True)
    sizes = {r.receptive_field[0]["size"] for r in s.layers if r.receptive_field}
    assert (195 if name == "alexnet" else 212) in sizes


def test_dilation_padding_and_stride():
    # Yu & Koltun 2016: 3x3 convs with dilation 1, 2, 4 give 3, 7, 15.
    net = nn.Sequential(*(nn.Conv2d(1, 1, 3, dilation=d, padding=d) for d in (1, 2, 4)))
    s = summarize(net, (1, 32, 32))
    assert [r.receptive_field[0]["size"] for r in s.layers] == [3, 7, 15]
    assert [r.receptive_field[0]["start"] for r in s.layers] == [0, 0, 0]  # "same" padding keeps centres
    s = summarize(nn.Conv1d(1, 1, 4, stride=3, padding=2), (1, 12))
    assert _rf(s, "") == [(4, 3, -0.5)]


def test_max_over_parallel_paths_and_residual():
    spec = {
        "input": [2, 16, 16],
        "layers": [
            {"parallel": {"merge": "concat", "branches": [[{"conv2d": {"out_channels": 2, "kernel_size": 1}}],
                                                          [{"conv2d": {"out_channels": 2, "kernel_size": 5, "padding": 2}}]]}},
            {"residual": {"layers": [{"conv2d": {"out_channels": 4, "kernel_size": 3, "padding": 1}}]}},
            {"global_avg_pool2d": {}},
            {"linear": {"out_features": 3}},
        ],
    }  # fmt: skip
    s = summarize(build_from_spec(spec), (2, 16, 16))
    assert _rf(s, "features.0.branches.0.0") == [(1, 1, 0)] * 2
    assert _rf(s, "features.0.branches.1.0") == [(5, 1, 0)] * 2
    assert _rf(s, "features.1.layers.0") == [(7, 1, 0)] * 2  # after concat: max(1, 5) = 5, then + 2
    gap, fc = s.row("features.2"), s.row("head.3")
    assert gap.receptive_field is None and gap.receptive_field_note.startswith("global: covers the whole input")
    assert fc.receptive_field is None and fc.receptive_field_note.startswith("global")


def test_flatten_says_so():
    s = summarize(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 36, 4)), (1, 8, 8))
    assert s.row("1").receptive_field is None and "flattened" in s.row("1").receptive_field_note
    assert s.row("2").receptive_field_note.startswith("global")


class _Probe:
    """One forward pass that keeps every module's first output, then gradients of single units."""

    def __init__(self, model, shape):
        self.outputs = {}
        def keep(name):
            def hook(m, args, out):
                self.outputs.setdefault(name, out)  # returns None: the forward pass is untouched

            return hook

        handles = [m.register_forward_hook(keep(n)) for n, m in model.named_modules()]
        self.x = torch.rand(1, *shape, dtype=torch.float64, requires_grad=True)
        model(self.x)
        for h in handles:
            h.remove()

    def support(self, layer, index):
        """Input positions (lo, hi) per axis with non-zero gradient for unit ``index`` of ``layer``."""
        (g,) = torch.autograd.grad(self.outputs[layer][(0, slice(None), *index)].sum(), self.x, retain_graph=True)
        g = g[0].abs().sum(0)
        out = []
        for ax in range(g.ndim):
            other = tuple(d for d in range(g.ndim) if d != ax)
            nz = torch.nonzero(g.sum(other) if other else g).flatten()
            out.append((int(nz.min()), int(nz.max())) if nz.numel() else None)  # None: a dead ReLU unit
        return out


def test_recursion_is_tight_for_positive_linear_nets():
    # Convolutions with positive weights and average pooling (no ReLU, no max) have a gradient that is
    # non-zero exactly on the receptive field clipped to the input: an independent check of size,
    # jump and start, including padding, stride and dilation.
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 2, 5, padding=2), nn.AvgPool2d(3, 2, padding=1), nn.Conv2d(2, 2, 3, dilation=2, padding=1),
        nn.AvgPool2d(2), nn.Conv2d(2, 1, 4, stride=2),
    ).double()  # fmt: skip
    for p in net.parameters():
        p.data = p.data.abs() + 0.1
    shape = (1, 43, 43)  # 43 -> 43 -> 22 -> 20 -> 10 -> 4: every stride fits
    s = summarize(net, shape)
    probe = _Probe(net, shape)
    for row in s.layers:
        out = row.output_shape[1:]
        for index in [(0, 0), tuple(n // 2 for n in out), tuple(n - 1 for n in out)]:
            support = probe.support(row.name, index)
            for ax, (lo, hi) in enumerate(support):
                a = row.receptive_field[ax]
                c = a["start"] + index[ax] * a["jump"]
                want_lo, want_hi = max(0, c - (a["size"] - 1) / 2), min(shape[ax + 1] - 1, c + (a["size"] - 1) / 2)
                assert (lo, hi) == (want_lo, want_hi), (row.name, index, ax)


MODELS_SMALL = [
    ("tdnn", {}, None),
    ("tcn", {"num_channels": (3, 3)}, (1, 30)),
    ("dqn", {}, None),
    ("c3d", {"variant": "small"}, (3, 8, 16, 16)),
    ("unet", {"base_width": 2, "depth": 1}, (1, 68, 68)),
    ("unet", {"base_width": 2, "depth": 2, "upsample": "resize_conv", "padding": "same"}, (1, 32, 32)),
    ("dcgan_generator", {"base_width": 2}, None),
    ("dcgan_generator", {"base_width": 2, "upsample": "resize_conv"}, None),
]


@pytest.mark.parametrize(("name", "kwargs", "shape"), MODELS_SMALL, ids=lambda v: str(v))
def test_gradient_never_leaves_the_theoretical_field(name, kwargs, shape):
    # Transposed convolutions and resizing use an envelope (see receptive_field.py); it must still hold
    # every output position's true field, at the corners and the centre of every feature map.
    torch.manual_seed(0)
    model = create_model(name, **kwargs).double().eval()
    shape = shape or model.input_shape
    s = summarize(model, shape)
    probe = _Probe(model, shape)
    seen = set()
    for row in s.layers:
        if row.receptive_field is None or len(row.output_shape) < 2 or row.name in seen:
            continue
        if not any(t in row.type for t in ("Conv", "Pool", "Upsample")):
            continue  # activations and norms repeat the field of the layer before them
        seen.add(row.name)  # modules called twice (U-Net's pool) are checked at their first call
        out = row.output_shape[1:]
        for index in [tuple(0 for _ in out), tuple(n // 2 for n in out), tuple(n - 1 for n in out)]:
            for ax, support in enumerate(probe.support(row.name, index)):
                if support is None:
                    continue
                lo, hi = support
                a = row.receptive_field[ax]
                c = a["start"] + index[ax] * a["jump"]
                tol = 1e-4  # rounded to 6 decimals in the summary
                assert c - (a["size"] - 1) / 2 - tol <= lo <= hi <= c + (a["size"] - 1) / 2 + tol, (row.name, index, ax)


def test_transposed_conv_envelope_by_hand():
    # ConvTranspose1d k=4, s=2, p=1 (DCGAN): output o is fed by inputs ceil((o - 2)/2) .. floor((o + 1)/2),
    # envelope [(o - 2)/2, (o + 1)/2]: size 1 + 3/2, jump 1/2, start -1/4.
    s = summarize(nn.ConvTranspose1d(1, 1, 4, stride=2, padding=1), (1, 8))
    assert _rf(s, "") == [(2.5, 0.5, -0.25)]


@pytest.mark.parametrize(
    "layer",
    [
        nn.ConvTranspose1d(1, 1, 3, stride=2, padding=1),
        nn.ConvTranspose1d(1, 1, 2, stride=2),
        nn.ConvTranspose1d(1, 1, 5, stride=3, padding=2, dilation=2),
        nn.Upsample(scale_factor=3, mode="nearest"),
        nn.Upsample(scale_factor=2, mode="linear"),
        nn.AdaptiveAvgPool1d(6),  # 13 -> 6: bins of unequal width
        nn.AdaptiveMaxPool1d(4),  # 13 -> 4
    ],
    ids=lambda m: type(m).__name__ + "-" + m.extra_repr().replace(" ", ""),
)
def test_envelopes_hold_every_output_position(layer):
    # After a strided conv (jump 2) so that the envelope arithmetic is exercised with j_in != 1.
    net = nn.Sequential(nn.Conv1d(1, 1, 3, stride=2), layer).double()
    for p in net.parameters():
        p.data = p.data.abs() + 0.1
    shape = (1, 27)  # -> 13
    row = summarize(net, shape).row("1")
    a = row.receptive_field[0]
    probe = _Probe(net, shape)
    for j in range(row.output_shape[-1]):
        support = probe.support("1", (j,))[0]
        if support is None:
            continue
        c = a["start"] + j * a["jump"]
        tol = 1e-4  # summary numbers are rounded to 6 decimals; envelopes may touch the support exactly
        assert c - (a["size"] - 1) / 2 - tol <= support[0] <= support[1] <= c + (a["size"] - 1) / 2 + tol, j


def test_catalog_layers_with_hidden_windows_use_their_geometry():
    # The locally connected layer runs a custom autograd function and stochastic pooling uses unfold;
    # their kernel_size/stride/padding attributes give the field instead of the ops.
    spec = {
        "input": [2, 12, 12],
        "layers": [
            {"locally_connected2d": {"out_channels": 2, "kernel_size": 3, "padding": 1}},
            {"relu": {}},
            {"stochastic_pool2d": {"kernel_size": 2}},
            {"mixed_pool2d": {"kernel_size": 3, "stride": 3}},
        ],
    }
    s = summarize(build_from_spec(spec), (2, 12, 12))
    assert _rf(s, "features.0") == [(3, 1, 0)] * 2
    assert _rf(s, "features.2") == [(4, 2, 0.5)] * 2
    assert _rf(s, "features.3") == [(8, 6, 2.5)] * 2


def test_resnet18_last_block():
    # He et al. 2016, Table 1 (18-layer): conv1 7x7/2 -> 7 (jump 2); max-pool 3x3/2 -> 11 (4); conv2_x
    # four 3x3 -> 11 + 4*2*4 = 43; conv3_x: 3x3/2 -> 51 (8), three more -> 99; conv4_x: 115 (16), 211;
    # conv5_x: 243 (32), three more -> 435. Shortcuts (1x1) never widen it. Input size does not matter.
    if "resnet18" not in list_models():
        pytest.skip("resnet18 not registered")
    model = create_model("resnet18")
    s = summarize(model, (3, 64, 64))
    conv_sizes = [r.receptive_field[0]["size"] for r in s.layers if r.type == "Conv2d" and "downsample" not in r.name]
    assert conv_sizes[0] == 7 and conv_sizes[-1] == 435
    assert s.layers[[r.type for r in s.layers].index("MaxPool2d")].receptive_field[0]["size"] == 11
    last = [r for r in s.layers if r.receptive_field is not None][-1]
    assert (last.receptive_field[0]["size"], last.receptive_field[0]["jump"]) == (435, 32)
