"""Config loading: strict validation, one-line messages with suggestions, --set overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cnnkit.config import Config, config_to_yaml, load_config, parse_overrides, validate_config
from cnnkit.errors import ConfigError


def test_defaults_are_the_embedded_digits_run() -> None:
    cfg = load_config(None)
    assert cfg.model.as_dict() == {"name": "lenet5", "variant": "modern"}
    assert cfg.data.name == "digits"
    assert cfg.name == "lenet5-digits"


def test_embedded_default_equals_the_recipe_file() -> None:
    recipe = Path(__file__).resolve().parents[2] / "configs" / "lenet5-digits.yaml"
    assert load_config(None) == load_config(recipe)


def test_overrides_parse_yaml_scalars() -> None:
    cfg = load_config(None, ["train.epochs=3", "optim.lr=1e-3", "data.augment.hflip=true", "data.augment.scale=[0.9, 1.1]"])
    assert cfg.train.epochs == 3
    assert cfg.optim.lr == pytest.approx(1e-3)
    assert cfg.data.augment.hflip is True
    assert cfg.data.augment.scale == (0.9, 1.1)


def test_yaml_1_1_exponent_floats_are_numbers(tmp_path: Path) -> None:
    # PyYAML reads "1e-3" as a string (YAML 1.1); users mean 0.001.
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1e-3\n")
    assert load_config(path).optim.lr == pytest.approx(0.001)


def test_model_kwargs_pass_through() -> None:
    cfg = load_config(None, ["model.variant=lecun1998", "model.num_classes=7"])
    assert cfg.model.as_dict() == {"name": "lenet5", "variant": "lecun1998", "num_classes": 7}


def test_spec_form(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model: {spec: configs/models/lenet5.yaml}\n")
    assert load_config(path).model.as_dict() == {"spec": "configs/models/lenet5.yaml"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epoch=3", "config key train.epoch: unknown key; did you mean 'epochs'?"),
        ("trian.epochs=3", "config key trian: unknown key; did you mean 'train'?"),
        ("data.augment.flip=true", "config key data.augment.flip: unknown key; did you mean"),
        ("train.epochs=ten", "config key train.epochs: expected an integer, received 'ten' (str)"),
        ("optim.name=sgdd", "config key optim.name: Unknown optimizer 'sgdd'; did you mean 'sgd'?"),
        ("train.precision=fp64", "config key train.precision: expected one of"),
        ("data.batch_size=0", "config key data.batch_size: input should be greater than or equal to 1"),
        ("train.deterministic=maybe", "config key train.deterministic: expected true or false, received 'maybe'"),
    ],
)
def test_errors_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    text = str(info.value)
    assert text.startswith(message)
    assert "\n" not in text


def test_bad_override_syntax(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--set expects key.path=value"):
        parse_overrides(["train.epochs"])
    path = tmp_path / "c.yaml"
    path.write_text("seed: 3\n")
    with pytest.raises(ConfigError, match="--set seed.x: seed is a value, not a section"):
        load_config(path, ["seed.x=1"])
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="config key train.epochs: expected an integer"):
        load_config(empty, ["train.epochs.x=1"])


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML at line"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(listy)


def test_python_tags_are_refused(tmp_path: Path) -> None:
    # safe_load only: a config must never construct Python objects.
    evil = tmp_path / "evil.yaml"
    evil.write_text("seed: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(evil)


def test_resolved_yaml_round_trips(tmp_path: Path) -> None:
    cfg = load_config(None, ["train.epochs=2", "model.variant=modern"])
    text = config_to_yaml(cfg)
    again = validate_config(yaml.safe_load(text))
    assert again == cfg
    assert isinstance(again, Config)


def test_name_defaults_to_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "my-run.yaml"
    path.write_text("seed: 3\n")
    cfg = load_config(path)
    assert cfg.name == "my-run" and cfg.seed == 3


@pytest.mark.parametrize(
    "override",
    [
        "optim.lr=inf", "optim.lr=nan", "optim.lr=.inf", "optim.lr=-.inf", "optim.momentum=.nan",
        "optim.weight_decay=inf", "train.label_smoothing=nan", "train.grad_clip=.inf", "schedule.min_lr=nan",
        "optim.betas=[0.9, .nan]", "data.augment.scale=[0.9, .inf]", "train.penalty.l2=inf",
    ],
)
def test_non_finite_floats_are_rejected(override: str) -> None:
    # nan passes every `gt=0` bound (comparisons with nan are false) and inf passes `ge=0`: both would
    # only show up as a NaN loss later.
    key = override.split("=")[0]
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert str(info.value).startswith(f"config key {key}") and "expected a finite number" in str(info.value)


def _float_fields(model: type, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    from pydantic import BaseModel

    out = []
    for name, info in model.model_fields.items():
        cands = getattr(info.annotation, "__args__", ()) or (info.annotation,)
        for cand in cands:
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                out += _float_fields(cand, prefix + (name,))
        if "float" in repr(info.annotation) and "tuple" not in repr(info.annotation):
            out.append(prefix + (name,))
    return out


def test_every_float_field_refuses_nan_and_inf() -> None:
    fields = _float_fields(Config)
    assert ("optim", "lr") in fields and ("data", "augment", "elastic", "sigma") in fields and len(fields) > 20
    for path in fields:
        for bad in (float("nan"), float("inf")):
            raw: dict = {}
            node = raw
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = bad
            with pytest.raises(ConfigError, match=f"config key {'.'.join(path)}: expected a finite number"):
                validate_config(raw)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.epochs=true", "train.epochs"), ("data.batch_size=false", "data.batch_size"),
        ("seed=true", "seed"), ("data.limit_train=true", "data.limit_train"), ("train.epochs='3'", "train.epochs"),
        ("data.input_size=[true, 8]", "data.input_size.0"), ("optim.lr=true", "optim.lr"),
    ],
)
def test_bools_and_strings_are_not_numbers(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert str(info.value).startswith(f"config key {key}: expected a")


def test_yaml_integers_still_work(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("seed: 7\ntrain: {epochs: 3}\noptim: {lr: 1, momentum: 0}\ndata: {input_size: [16, 16]}\n")
    cfg = load_config(path)
    assert (cfg.seed, cfg.train.epochs, cfg.data.input_size) == (7, 3, (16, 16))
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)


# --- choosing the model: the model section starts afresh when the model changes ---------------------------


def test_set_model_name_drops_the_previous_models_arguments() -> None:
    # The default run is LeNet-5 with variant=modern; ResNet-20 has no `variant`.
    cfg = load_config(None, ["model.name=resnet20"])
    assert cfg.model.as_dict() == {"name": "resnet20"}
    assert cfg.name == "resnet20-digits"


def test_set_model_keeps_the_model_keys_given_with_it() -> None:
    after = load_config(None, ["model.name=resnet20", "model.shortcut=B"])
    before = load_config(None, ["model.shortcut=B", "model.name=resnet20"])
    assert after.model.as_dict() == before.model.as_dict() == {"name": "resnet20", "shortcut": "B"}


def test_set_the_same_model_keeps_its_arguments() -> None:
    assert load_config(None, ["model.name=lenet5"]).model.as_dict() == {"name": "lenet5", "variant": "modern"}


def test_set_null_clears_a_model_argument() -> None:
    assert load_config(None, ["model.variant=null"]).model.as_dict() == {"name": "lenet5"}


def test_set_model_spec_replaces_the_named_model(tmp_path: Path) -> None:
    cfg = load_config(None, ["model.spec=configs/models/lenet5.yaml"])
    assert cfg.model.as_dict() == {"spec": "configs/models/lenet5.yaml"}
    assert cfg.model.name is None and cfg.name == "lenet5-digits"
    # and back: a spec file's config switched to a registered model
    path = tmp_path / "c.yaml"
    path.write_text("model: {spec: configs/models/lenet5.yaml}\n")
    assert load_config(path, ["model.name=resnet20"]).model.as_dict() == {"name": "resnet20"}


def test_a_config_file_naming_another_model_gets_no_default_arguments(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model: {name: resnet20}\n")
    assert load_config(path).model.as_dict() == {"name": "resnet20"}
    spec = tmp_path / "s.yaml"
    spec.write_text("model: {spec: net.yaml}\n")
    cfg = load_config(spec)
    assert cfg.model.as_dict() == {"spec": "net.yaml"} and cfg.model.name is None


def test_old_run_config_with_name_and_spec_loads_as_the_spec(tmp_path: Path) -> None:
    # Run folders written before the model section had one choice record the default name next to the spec.
    path = tmp_path / "config.yaml"
    path.write_text("model: {name: lenet5, spec: net.yaml}\n")
    assert load_config(path).model.as_dict() == {"spec": "net.yaml"}


def test_model_needs_a_name_or_a_spec() -> None:
    with pytest.raises(ConfigError, match="config key model: expected a model name"):
        load_config(None, ["model.name=null"])


def test_set_whole_model_section() -> None:
    assert load_config(None, ["model={name: nin, dropout: 0.1}"]).model.as_dict() == {"name": "nin", "dropout": 0.1}
