import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnkit.errors import CnnkitError, ConfigError
from cnnkit.models import build_from_spec, load_spec
from cnnkit.models.spec import Parallel, Residual

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "models"

ISSUE_SPEC = textwrap.dedent(
    """
    input: [1, 28, 28]
    layers:
      - conv2d: {out_channels: 32, kernel_size: 3, padding: 1}
      - relu: {}
      - max_pool2d: {kernel_size: 2}
      - residual:
          layers: [{conv2d: {out_channels: 32, kernel_size: 3, padding: 1}}, {relu: {}}]
      - parallel: {merge: concat, branches: [[{conv2d: {out_channels: 16, kernel_size: 1}}],
                                             [{conv2d: {out_channels: 16, kernel_size: 3, padding: 1}}]]}
      - global_avg_pool2d: {}
      - linear: {out_features: 10}
    """
)


def _n(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _spec(*layers, shape=(3, 8, 8)):
    return {"input": list(shape), "layers": list(layers)}


def test_issue_example_builds_with_inferred_sizes(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(ISSUE_SPEC)
    model = build_from_spec(path)
    assert model.input_shape == (1, 28, 28)
    assert model.output_shape == (10,)
    res = model.features[3]
    assert isinstance(res, Residual) and res.layers[0].in_channels == 32
    par = model.features[4]
    assert isinstance(par, Parallel) and [b[0].in_channels for b in par.branches] == [32, 32]
    assert model.head[0].in_features == 32  # 16 + 16 concatenated
    # conv 1->32 3x3, residual conv 32->32 3x3, 1x1 and 3x3 branches 32->16, linear 32->10
    hand = (1 * 32 * 9 + 32) + (32 * 32 * 9 + 32) + (32 * 16 + 16) + (32 * 16 * 9 + 16) + (32 * 10 + 10)
    assert _n(model) == hand
    x = torch.randn(2, 1, 28, 28)
    model.eval()
    torch.testing.assert_close(model(x), model.forward_head(model.forward_features(x)))
    assert model.forward_features(x).shape == (2, 32)  # up to and including the global pool


def test_residual_and_parallel_compute_what_they_say():
    torch.manual_seed(0)
    model = build_from_spec(
        _spec(
            {"residual": {"layers": [{"conv2d": {"out_channels": 3, "kernel_size": 3, "padding": 1}}]}},
            {"parallel": {"merge": "add", "branches": [[{"conv2d": {"out_channels": 4, "kernel_size": 1}}],
                                                       [{"conv2d": {"out_channels": 4, "kernel_size": 1}}]]}},
        )
    ).eval()  # fmt: skip
    x = torch.randn(2, 3, 8, 8)
    conv = model.features[0].layers[0]
    h = conv(x) + x
    b0, b1 = model.features[1].branches
    torch.testing.assert_close(model(x), b0(h) + b1(h))


def test_projection_shortcut_and_missing_shortcut_error():
    down = {"conv2d": {"out_channels": 8, "kernel_size": 3, "stride": 2, "padding": 1}}
    with pytest.raises(ConfigError, match=r"layer 0 residual: layers give \(B, 8, 4, 4\) but the identity shortcut gives \(B, 3, 8, 8\).*shortcut"):
        build_from_spec(_spec({"residual": {"layers": [down]}}))
    model = build_from_spec(
        _spec({"residual": {"layers": [down], "shortcut": [{"conv2d": {"out_channels": 8, "kernel_size": 1, "stride": 2}}]}})
    )
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 8, 4, 4)


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        (_spec({"conv2": {"out_channels": 4, "kernel_size": 3}}), r"layer 0: Unknown layer 'conv2'; did you mean 'conv2d'"),
        (_spec({"conv2d": {"out_channel": 4, "kernel_size": 3}}), r"layer 0 conv2d: unknown argument 'out_channel'; did you mean 'out_channels'"),
        (_spec({"conv2d": {"kernel_size": 3}}), r"layer 0 conv2d: missing argument\(s\) 'out_channels'"),
        (
            _spec({"flatten": {}}, {"linear": {"out_features": 512}}, {"relu": {}}, {"conv2d": {"out_channels": 4, "kernel_size": 1}}),
            r"^layer 3 conv2d: expected 4-D input, got \(B, 512\)$",
        ),
        (_spec({"conv2d": {"out_channels": 4, "kernel_size": 30}}), r"layer 0 conv2d: cannot apply to input of shape \(B, 3, 8, 8\)"),
        (
            _spec({"parallel": {"merge": "add", "branches": [[{"conv2d": {"out_channels": 4, "kernel_size": 1}}], [{"conv2d": {"out_channels": 5, "kernel_size": 1}}]]}}),
            r"layer 0 parallel: merge 'add' needs equal branch shapes",
        ),
        (_spec({"parallel": {"merge": "max", "branches": [[{"relu": {}}]]}}), r"layer 0 parallel: expected merge in"),
        (_spec({"residual": {"layer": [{"relu": {}}]}}), r"layer 0 residual: unknown key 'layer'; did you mean 'layers'"),
        (_spec({"residual": {"layers": [{"conv2d": {"out_channels": 3, "kernel_size": 1}}, {"bogus_layer": {}}]}}), r"layer 0\.layers\.1: Unknown layer"),
        (_spec({"relu": {}, "tanh": {}}), r"layer 0: expected a one-key mapping"),
        ({"input": [3, 8, 8], "layer": []}, r"Unknown key 'layer' in model spec; did you mean 'layers'"),
        ({"layers": [{"relu": {}}]}, r"Missing key 'input'"),
        ({"input": [3, -8], "layers": [{"relu": {}}]}, r"'input' to be a list of positive ints"),
        ({"input": [3, 8], "layers": []}, r"'layers' to be a non-empty list"),
    ],
)
def test_errors_name_the_layer(spec, pattern):
    with pytest.raises(ConfigError, match=pattern):
        build_from_spec(spec)


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [1, 2\nlayers: x")
    with pytest.raises(CnnkitError, match="not valid YAML"):
        load_spec(bad)


def test_lenet5_example_spec():
    model = build_from_spec(CONFIGS / "lenet5.yaml")
    # C1 6@5x5, C3 16 x 6 @5x5 (full table), C5 120 x 16 @5x5, F6 120 -> 84, output 84 -> 10
    hand = (6 * 25 + 6) + (16 * 6 * 25 + 16) + (120 * 16 * 25 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert _n(model) == hand == 61_706
    x = torch.randn(2, 1, 32, 32, requires_grad=True)
    y = model(x)
    assert y.shape == (2, 10)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert model.forward_features(x).shape == (2, 120)


def test_vgg_style_example_spec():
    model = build_from_spec(CONFIGS / "vgg-style.yaml")
    widths = [3, 64, 64, 128, 128, 256, 256]
    conv_bn = sum(a * b * 9 + b + 2 * b for a, b in zip(widths, widths[1:]))
    hand = conv_bn + (256 * 4 * 4 * 512 + 512) + (512 * 10 + 10)
    assert _n(model) == hand
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(x), model.forward_head(model.forward_features(x)))
    assert model(x).shape == (2, 10)
    assert model.training is False and build_from_spec(CONFIGS / "vgg-style.yaml").training  # built in train mode


def test_layer_catalog_names_usable():
    model = build_from_spec(
        _spec(
            {"depthwise_separable_conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}},
            {"batch_norm2d": {}},
            {"mixed_pool2d": {"kernel_size": 2}},
            {"dropout": {"p": 0.1}},
            {"global_avg_pool2d": {}},
            {"linear": {"out_features": 3}},
        )
    )
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 3)


def test_inferred_spatial_input_size_and_vector_dim():
    model = build_from_spec(
        _spec(
            {"conv2d": {"out_channels": 4, "kernel_size": 3}},  # (B, 4, 6, 6)
            {"locally_connected2d": {"out_channels": 2, "kernel_size": 3}},  # input_size (6, 6) inferred
            {"flatten": {"start_dim": 2}},  # (B, 2, 16): 2 vectors of 16
            {"layer_norm": {"normalized_shape": 16}},
            {"attention_pool": {"num_heads": 2}},  # dim 16 inferred from (B, N, dim)
        )
    )
    assert tuple(model.features[1].input_size) == (6, 6)
    assert model.features[4].attn.embed_dim == 16
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 1, 16)


def test_fully_convolutional_spec_has_no_head():
    model = build_from_spec(
        _spec({"conv2d": {"out_channels": 4, "kernel_size": 3}}, {"max_pool2d": {"kernel_size": 2}},
              {"conv2d": {"out_channels": 2, "kernel_size": 1}})
    )  # fmt: skip
    assert len(model.head) == 0 and len(model.features) == 3
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(model.forward_features(x), model(x))


# ----------------------------------------------------------------------------------- tuples and clips


def test_select_keeps_one_element_of_an_lstm_output():
    from cnnkit.models.spec import Select

    spec = {"input": [5, 3], "layers": [{"lstm": {"hidden_size": 4, "batch_first": True, "select": [1, 0, -1]}},
                                         {"linear": {"out_features": 2}}]}
    torch.manual_seed(0)
    model = build_from_spec(spec).eval()
    sel = model.features[0] if isinstance(model.features[0], Select) else model.head[0]
    assert isinstance(sel, Select) and sel.index == (1, 0, -1) and "select=[1, 0, -1]" in repr(sel)
    assert sel.module.input_size == 3  # inferred from the last axis
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        out, (h, _) = sel.module(x)
        torch.testing.assert_close(sel(x), h[-1])
        torch.testing.assert_close(h[-1], out[:, -1])  # one layer, one direction: the last step's output
    assert model(x).shape == (2, 2)
    seq = build_from_spec({"input": [5, 3], "layers": [{"lstm": {"hidden_size": 4, "batch_first": True, "select": 0}}]})
    assert seq.output_shape == (5, 4)


def test_tuple_output_without_select_says_how_to_fix_it():
    with pytest.raises(ConfigError, match=r"layer 0 lstm: returns tuple, not a tensor; add 'select: INDEX' .*\(B, 5, 4\)"):
        build_from_spec({"input": [5, 3], "layers": [{"lstm": {"hidden_size": 4, "batch_first": True}}]})
    with pytest.raises(ConfigError, match=r"select \[2\] does not fit"):
        build_from_spec({"input": [5, 3], "layers": [{"lstm": {"hidden_size": 4, "select": 2}}]})
    with pytest.raises(ConfigError, match="expected select to be an index"):
        build_from_spec({"input": [5, 3], "layers": [{"lstm": {"hidden_size": 4, "select": "last"}}]})


def test_per_frame_applies_the_same_layers_to_every_frame():
    spec = {"input": [1, 4, 8, 8], "layers": [
        {"per_frame": {"layers": [{"conv2d": {"out_channels": 3, "kernel_size": 3}}, {"flatten": {}}]}}]}
    torch.manual_seed(0)
    model = build_from_spec(spec).eval()
    assert model.output_shape == (4, 3 * 6 * 6)
    x = torch.randn(2, 1, 4, 8, 8)
    conv = model.features[0].layers[0]
    with torch.no_grad():
        ref = torch.stack([conv(x[:, :, t]).flatten(1) for t in range(4)], 1)
        torch.testing.assert_close(model(x), ref)
    with pytest.raises(ConfigError, match="per_frame: expected clips"):
        build_from_spec({"input": [1, 8, 8], "layers": [{"per_frame": {"layers": [{"relu": {}}]}}]})


def test_cnn_lstm_spec_file_builds_and_trains_a_step():
    model = build_from_spec(Path(__file__).parents[2] / "configs" / "models" / "cnn-lstm.yaml")
    assert model.input_shape == (1, 8, 32, 32) and model.output_shape == (4,)
    # Hand count: frame CNN (bias-free convs + BN affine), LSTM 4 gates, linear 64 -> 4.
    cnn = 1 * 16 * 9 + 16 * 32 * 9 + 32 * 64 * 9 + 2 * (16 + 32 + 64)
    assert sum(p.numel() for p in model.parameters()) == cnn + 4 * 64 * 128 + 8 * 64 + 64 * 4 + 4
    model.train()
    model(torch.randn(2, 1, 8, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
