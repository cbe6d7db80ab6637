import json

import pytest
import torch

from cnnkit.errors import CnnkitError, ConfigError, UnknownNameError
from cnnkit.models import build_from_spec, build_model, model_config_for_json
from cnnkit.models.spec import SpecModel

SPEC = {"input": [2, 8, 8], "layers": [{"conv2d": {"out_channels": 4, "kernel_size": 3}}, {"flatten": {}}, {"linear": {"out_features": 5}}]}


def test_name_with_kwargs_and_dataset_defaults():
    model = build_model({"name": "tdnn", "hidden_channels": 4}, num_classes=6, in_channels=10)
    assert model.features[0].in_channels == 10 and model.features[0].out_channels == 4
    assert model(torch.randn(1, 10, 15)).shape == (1, 6)
    assert model.input_shape == (10, 15)


def test_cfg_wins_over_dataset_values():
    model = build_model({"name": "tdnn", "num_classes": 2}, num_classes=6)
    assert model(torch.randn(1, 16, 15)).shape == (1, 2)


def test_values_not_passed_to_builders_without_them():
    model = build_model({"name": "dqn", "num_actions": 4}, num_classes=10)  # dqn has no num_classes
    assert model(torch.zeros(1, 4, 84, 84)).shape == (1, 4)


def test_unknown_builder_argument_suggests():
    with pytest.raises(ConfigError, match=r"model 'tdnn' has no argument 'num_clases'; did you mean 'num_classes'"):
        build_model({"name": "tdnn", "num_clases": 3})


def test_unknown_model_name_suggests():
    with pytest.raises(UnknownNameError, match="did you mean 'tdnn'"):
        build_model({"name": "tdn"})


def test_builder_validation_is_a_config_error():
    with pytest.raises(CnnkitError):
        build_model({"name": "unet", "upsample": "bilinear"})


def test_name_xor_spec():
    with pytest.raises(ConfigError, match="exactly one"):
        build_model({})
    with pytest.raises(ConfigError, match="exactly one"):
        build_model({"name": "tdnn", "spec": SPEC})
    with pytest.raises(ConfigError, match="takes no other model keys"):
        build_model({"spec": SPEC, "dropout": 0.5})
    # a run's saved build config: {"spec": {...}, "num_classes": N} is checked, not rejected
    assert build_model({"spec": SPEC, "num_classes": 5}).output_shape == (5,)
    with pytest.raises(ConfigError, match="outputs 5 values but the data has 7 classes"):
        build_model({"spec": SPEC, "num_classes": 7})


def test_pydantic_model_section():
    from cnnkit.config.schema import ModelConfig

    model = build_model(ModelConfig(spec=SPEC))  # name keeps its default 'lenet5'; the spec wins
    assert model.input_shape == (2, 8, 8)
    model = build_model(ModelConfig(name="tdnn", hidden_channels=4), num_classes=3)
    assert model(torch.randn(1, 16, 15)).shape == (1, 3)


def test_spec_dict_and_path(tmp_path):
    model = build_model({"spec": SPEC}, num_classes=5, in_channels=2)
    assert isinstance(model, SpecModel) and model.input_shape == (2, 8, 8)
    path = tmp_path / "m.yaml"
    path.write_text(json.dumps(SPEC))  # JSON is YAML
    assert build_model({"spec": str(path)}).output_shape == (5,)


def test_spec_checked_against_dataset():
    with pytest.raises(ConfigError, match="expects 2 input channels but the data has 3"):
        build_model({"spec": SPEC}, in_channels=3)
    with pytest.raises(ConfigError, match="outputs 5 values but the data has 10 classes"):
        build_model({"spec": SPEC}, num_classes=10)


def test_model_config_for_json_inlines_the_spec(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(json.dumps(SPEC))
    cfg = model_config_for_json({"spec": str(path)})
    text = json.dumps(cfg)
    path.unlink()  # rebuilding must not need the file
    rebuilt = build_model(json.loads(text))
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in build_from_spec(SPEC).parameters())
    assert model_config_for_json({"name": "tdnn", "num_classes": 3}) == {"name": "tdnn", "num_classes": 3}


BEYOND_2D = {
    "tdnn": "sequence",
    "tcn": "sequence",
    "textcnn": "classification",
    "c3d": "video",
    "dqn": "reinforcement",
    "unet": "segmentation",
    "fcn": "segmentation",
    "segnet": "segmentation",
    "dcgan_generator": "generation",
}


@pytest.mark.parametrize("name", sorted(BEYOND_2D))
def test_beyond_2d_registry_contract(name):
    from cnnkit.models import create_model, model_info

    info = model_info(name)
    assert info["task"] == BEYOND_2D[name]
    assert info["paper"] and 1985 < info["year"] < 2030 and isinstance(info["num_params"], int)
    with torch.device("meta"):  # parameter counts without allocating C3D's 80M or U-Net's 31M weights
        model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == info["num_params"]
    assert model.input_shape == tuple(info["input_size"])
    if info["gradcam_layer"] is not None:
        model.get_submodule(info["gradcam_layer"])  # raises if the name is stale
    with torch.device("meta"):
        assert build_model({"name": name}).input_shape == tuple(info["input_size"])


# ----------------------------------------------------------------- sizes bounded before anything is allocated


def _list_models():
    from cnnkit.models import list_models

    return list_models()


@pytest.mark.parametrize("name", _list_models())
def test_every_registered_model_can_be_counted_on_meta(name):
    # build_model counts weights on the meta device before the real build; every builder must allow it.
    from cnnkit.models import create_model, model_info
    from cnnkit.models._limits import count_weights

    with torch.device("meta"):
        model = create_model(name)
    expected = model_info(name)["num_params"]
    if expected is not None:
        assert sum(p.numel() for p in model.parameters()) == expected
    assert 0 < count_weights(model) < 500_000_000


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"name": "lenet5", "num_classes": 6_000_000}, r"Expected 1 <= num_classes <= 1,000,000\. Received: num_classes=6000000"),
        ({"name": "lenet5", "num_classes": 0}, r"Received: num_classes=0"),
        ({"name": "resnet18", "in_channels": 100_000}, r"Expected 1 <= in_channels <= 4,096\. Received: in_channels=100000"),
        ({"spec": {**SPEC, "input": [3, 10_000, 10_000]}}, r"at most 33,554,432 values per sample"),
        ({"spec": {**SPEC, "input": [5000, 8, 8]}}, r"in_channels|channels <= 4,096"),
    ],
)
def test_obvious_sizes_are_bounded(cfg, match):
    with pytest.raises(ConfigError, match=match):
        build_model(cfg)


def test_the_weight_limit_counts_on_meta_and_is_configurable(monkeypatch):
    # resnet18 at 100,000 classes: 51M weights in the head alone; refused by count, not by allocation.
    monkeypatch.setenv("CNNKIT_MAX_PARAMS", "20_000_000")
    with pytest.raises(ConfigError, match=r"model 'resnet18' would hold 62,\d{3},\d{3} weights, more than the limit of 20,000,000; set CNNKIT_MAX_PARAMS"):
        build_model({"name": "resnet18", "num_classes": 100_000})
    with pytest.raises(ConfigError, match=r"the model spec up to layer 2 linear would hold"):
        build_model({"spec": {"input": [3, 64, 64], "layers": [{"flatten": {}}, {"dropout": {}}, {"linear": {"out_features": 2000}}]}})
    monkeypatch.setenv("CNNKIT_MAX_PARAMS", "lots")
    with pytest.raises(ConfigError, match="Expected CNNKIT_MAX_PARAMS to be a positive integer"):
        build_model({"name": "lenet5"})


def test_a_spec_layer_output_is_bounded():
    spec = {"input": [3, 32, 32], "layers": [{"upsample": {"scale_factor": 300}}, {"flatten": {}}]}
    with pytest.raises(ConfigError, match=r"layer 0 upsample: its output \(B, 3, 9600, 9600\) has 276,480,000 values"):
        build_from_spec(spec)


def test_the_meta_probe_leaves_the_random_state_alone():
    torch.manual_seed(0)
    spec_model = build_from_spec({"input": [3, 8, 8], "layers": [{"conv2d": {"out_channels": 4, "kernel_size": 3}}]})
    after_spec = torch.rand(3)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3)
    torch.testing.assert_close(spec_model.features[0].weight, conv.weight)
    torch.testing.assert_close(after_spec, torch.rand(3))
    from cnnkit.models import create_model

    torch.manual_seed(1)
    built = build_model({"name": "lenet5"})
    torch.manual_seed(1)
    torch.testing.assert_close(built.state_dict(), create_model("lenet5").state_dict())


# ------------------------------------------------------------------------ spec paths from received metadata


def test_spec_root_confines_spec_paths(tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    (root / "spec.json").write_text(json.dumps(SPEC))
    (tmp_path / "outside.json").write_text(json.dumps(SPEC))
    (root / "link.json").symlink_to(tmp_path / "outside.json")
    assert build_model({"spec": "spec.json"}, spec_root=root).output_shape == (5,)
    assert build_model({"spec": str(root / "spec.json")}, spec_root=root).output_shape == (5,)
    for bad in (str(tmp_path / "outside.json"), "../outside.json", "link.json", "missing.json", "."):
        with pytest.raises(ConfigError, match="not a file inside the run folder"):
            build_model({"spec": bad}, spec_root=root)
    assert build_model({"spec": SPEC}, spec_root=root).output_shape == (5,)  # inlined: nothing to resolve


def test_an_oversized_spec_file_is_not_read(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("input: [1, 8, 8]\n" + "#" * (1 << 20))
    with pytest.raises(ConfigError, match="larger than 1,048,576 bytes"):
        build_from_spec(big)
