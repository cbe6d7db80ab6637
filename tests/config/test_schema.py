"""Component names (model, dataset, task, loss, optimizer, schedule) are checked against their registries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cnnkit.config import Config, config_to_yaml, load_config, validate_config
from cnnkit.config.schema import LOSS_ALIASES, registered_name
from cnnkit.data import DATASETS
from cnnkit.errors import ConfigError
from cnnkit.layers import LOSSES
from cnnkit.models import MODELS
from cnnkit.tasks import TASKS
from cnnkit.train import OPTIMIZERS, SCHEDULES

_KEYS = {
    "model.name": MODELS,
    "data.name": DATASETS,
    "task.name": TASKS,
    "train.loss": LOSSES,
    "optim.name": OPTIMIZERS,
    "schedule.name": SCHEDULES,
}


@pytest.mark.parametrize("key", sorted(_KEYS))
def test_every_registered_name_is_accepted(key: str) -> None:
    for name in _KEYS[key].names():
        cfg = load_config(None, [f"{key}={name}"])
        section, _, field = key.rpartition(".")
        assert getattr(getattr(cfg, section) if section else cfg, field) == name


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.name=sgdd", "config key optim.name: Unknown optimizer 'sgdd'; did you mean 'sgd'?"),
        ("schedule.name=cosin", "config key schedule.name: Unknown schedule 'cosin'; did you mean 'cosine'?"),
        ("train.loss=euclid", "config key train.loss: Unknown loss 'euclid'; did you mean 'euclidean'?"),
        ("task=clasification", "config key task.name: Unknown task 'clasification'; did you mean 'classification'?"),
        ("model.name=resnet19", "config key model.name: Unknown model 'resnet19'; did you mean"),
        ("data.name=fashion_mnist2", "config key data.name: Unknown dataset 'fashion_mnist2'; did you mean 'fashion-mnist'"),
        ("optim.name=zzz", "config key optim.name: Unknown optimizer 'zzz'; registered optimizers: adadelta, adam"),
    ],
)
def test_unknown_names_get_the_registry_message(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_names_are_stored_in_their_registered_spelling() -> None:
    cfg = load_config(None, ["data.name=fashion_mnist", "model.name=mobilenet-v1"])
    assert cfg.data.name == "fashion-mnist" and cfg.model.name == "mobilenet_v1"


def test_loss_default_is_the_registry_name_and_the_old_spelling_loads(tmp_path: Path) -> None:
    assert Config().train.loss == "softmax_cross_entropy" and "softmax_cross_entropy" in LOSSES
    assert LOSS_ALIASES == {"cross_entropy": "softmax_cross_entropy"}
    # A run folder's config.yaml from before the rename: loads, and equals the same run written today.
    old = yaml.safe_load(config_to_yaml(load_config(None)))
    old["train"]["loss"] = "cross_entropy"
    del old["task"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(old))
    assert load_config(path) == load_config(None, ["name=lenet5-digits"])


def test_task_defaults_to_classification() -> None:
    assert load_config(None).task.name == "classification"
    assert validate_config({"task": "classification"}).task.name == "classification"


def test_task_takes_a_name_or_a_mapping_of_its_arguments() -> None:
    cfg = validate_config({"task": {"name": "classification", "aux_weight": 0.5, "loss": None}})
    assert cfg.task.name == "classification" and cfg.task.kwargs() == {"aux_weight": 0.5}
    assert load_config(None, ["task=classification"]).task.kwargs() == {}


def test_a_task_argument_it_does_not_take_is_named_with_close_matches() -> None:
    from cnnkit.errors import ConfigError
    from cnnkit.tasks import create_task

    with pytest.raises(ConfigError, match=r"task 'classification' has no argument 'aux_weigth'; did you mean 'aux_weight'\?"):
        create_task("classification", aux_weigth=0.5)
    assert create_task("classification", defaults={"loss": "euclidean", "unrelated": 1}).loss_name == "euclidean"


def test_dataset_options_are_checked_against_the_dataset() -> None:
    from cnnkit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^config key data.batch_sise: unknown key; did you mean 'batch_size'"):
        load_config(None, ["data.batch_sise=3"])


def test_assignment_is_validated_with_a_one_line_config_error() -> None:
    cfg = load_config(None)
    with pytest.raises(ConfigError, match=r"^config key data\.name: Unknown dataset 'nosuch'"):
        cfg.data.name = "nosuch"
    with pytest.raises(ConfigError, match=r"^config key data\.augment\.rotate: input should be less than or equal to 180"):
        cfg.data.augment.rotate = 200.0
    cfg.data.name = "fashion_mnist"
    assert cfg.data.name == "fashion-mnist"


def test_registered_name_rejects_unknown_kinds_loudly() -> None:
    with pytest.raises(KeyError):
        registered_name("widget", "x")


def test_importing_config_imports_no_package_above_it() -> None:
    # Config sits below models, data, tasks, layers and train (they import it); it reaches their
    # registries only when a name is validated.
    code = (
        "import sys, cnnkit.config; "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.split('.')[:2] in "
        "[['cnnkit', p] for p in ('models', 'data', 'tasks', 'layers', 'train')]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_env_section_bounds_and_the_dqn_alias() -> None:
    from cnnkit.config import load_config
    from cnnkit.errors import ConfigError

    cfg = load_config(None)
    assert cfg.env.name is None and cfg.env.num_envs == 1  # a supervised run's config carries the defaults
    with pytest.raises(ConfigError, match=r"config key env.num_envs: .*1"):
        load_config(None, ["env.num_envs=0"])
    with pytest.raises(ConfigError, match=r"config key env.sticky_actions"):
        load_config(None, ["env.sticky_actions=1.0"])
    with pytest.raises(ConfigError, match=r"config key env.nmae: unknown key; did you mean 'name'"):
        load_config(None, ["env.nmae=breakout"])
    # task.env of the first DQN runs moves to env.name; another task keeps its own keys
    moved = load_config(None, ["task.name=dqn", "task.env=Freeway", "task.max_episode_frames=500"])
    assert (moved.env.name, moved.env.max_episode_frames) == ("freeway", 500) and moved.task.kwargs() == {}
