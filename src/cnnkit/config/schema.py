"""The configuration schema: every key a run config may hold, with its type and default.

Configs are data: components are named by registry name (``model.name: lenet5``, ``data.name:
fashion-mnist``, ``task: classification``, ``optim.name: sgd``, ``schedule.name: cosine``,
``train.loss: softmax_cross_entropy``), never by import path. Unknown keys are rejected (see
:mod:`cnnkit.config.loader` for the messages).

Component names are checked against the registries themselves, so the list of valid names has one home:
the registry, where registering a new optimizer or dataset is all it takes for configs to accept it. The
registries live in packages *above* config (packages point one way: config -> layers, data -> models ->
tasks -> ... -> train), and two of them import this schema (data, train), so config cannot import them
when it is imported: that would be a cycle, and would make ``import cnnkit.config`` load torch and every
model. :func:`registered_name` therefore imports a registry's package when a name is validated, through
the table :data:`_REGISTRIES`; by then every package can be imported. A bad name gets the registry's own
message, with close matches (``config key optim.name: Unknown optimizer 'sgdd'; did you mean 'sgd'?``),
and a good one is stored in its registered spelling (``fashion_mnist`` -> ``fashion-mnist``).
Small closed sets that are no registry (``train.precision``, ``train.nan_policy``, ``data.fit``) stay
``Literal`` types.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..errors import ConfigError, UnknownNameError, did_you_mean
from ._errors import format_validation_error

__all__ = [
    "Config",
    "ModelConfig",
    "TaskConfig",
    "DataConfig",
    "AugmentConfig",
    "ElasticConfig",
    "TrainConfig",
    "CheckpointConfig",
    "EarlyStoppingConfig",
    "EMAConfig",
    "PenaltyConfig",
    "OptimConfig",
    "ScheduleConfig",
    "EvalConfig",
    "EnvConfig",
    "FiniteFloat",
    "StrictInt",
    "LOSS_ALIASES",
    "registered_name",
]

# Every number in a run config goes through one of these two types.
# FiniteFloat: `--set optim.lr=inf` or `nan` would pass any `gt=0` bound (nan compares false) and only
# surface as a NaN loss many steps later; strict also refuses `true` (a bool is not a number) and strings.
FiniteFloat = Annotated[float, Strict(), AllowInfNan(False)]
# StrictInt: pydantic's lax mode reads `epochs: true` as 1 and "3" as 3; YAML `3` is an int already.
StrictInt = Annotated[int, Strict()]

# Where each registry of component names lives: (package, attribute). Packages, not their inner modules,
# so a package may reorganise its files without touching config.
_REGISTRIES: dict[str, tuple[str, str]] = {
    "model": ("cnnkit.models", "MODELS"),
    "dataset": ("cnnkit.data", "DATASETS"),
    "task": ("cnnkit.tasks", "TASKS"),
    "loss": ("cnnkit.layers", "LOSSES"),
    "optimizer": ("cnnkit.train", "OPTIMIZERS"),
    "schedule": ("cnnkit.train", "SCHEDULES"),
}


def registered_name(kind: str, name: str) -> str:
    """``name`` in the registered spelling of the ``kind`` registry (see the module docstring).

    Raises:
        pydantic_core.PydanticCustomError: ``name`` is not registered; the message is the registry's, with
            close matches (the loader turns it into a one-line :class:`~cnnkit.errors.ConfigError`).
    """
    package, attribute = _REGISTRIES[kind]
    # Imported now, not at the top of this module: these packages import config (see the module docstring).
    registry = getattr(importlib.import_module(package), attribute)
    try:
        return registry.canonical(name)
    except UnknownNameError as exc:
        raise PydanticCustomError("unknown_name", "{message}", {"message": str(exc)}) from None


def _registered(kind: str) -> AfterValidator:
    return AfterValidator(lambda name: registered_name(kind, name))


ModelName = Annotated[str, _registered("model")]
DatasetName = Annotated[str, _registered("dataset")]
TaskName = Annotated[str, _registered("task")]
OptimizerName = Annotated[str, _registered("optimizer")]
ScheduleName = Annotated[str, _registered("schedule")]

# Old spellings of loss names, still found in run folders' config.yaml (which must load and resume).
LOSS_ALIASES: dict[str, str] = {"cross_entropy": "softmax_cross_entropy"}
LossName = Annotated[
    str, BeforeValidator(lambda name: LOSS_ALIASES.get(name, name) if isinstance(name, str) else name),
    _registered("loss"),
]


class _Strict(BaseModel):
    # extra="forbid": a typo is an error, not a silently ignored key. allow_inf_nan=False: a float field
    # added later without FiniteFloat still refuses inf and nan.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    key_path: ClassVar[str] = ""
    """Where this section sits in a whole config (``"data.augment"``), for messages about assignments."""

    def __setattr__(self, name: str, value: Any) -> None:
        # `cfg.data.name = "x"` is validated too (validate_assignment); its error is a one-line ConfigError
        # naming the key, as at load time, never a pydantic traceback.
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, type(self), self.key_path)) from None


class ModelConfig(BaseModel):
    """``name`` (registry name) plus the builder's keyword arguments, or ``spec`` (a model-spec YAML path).

    Extra keys are the builder's keyword arguments; they are checked against the builder's signature when
    the model is built (:func:`cnnkit.models.build_model`). A keyword argument set to ``null`` is dropped,
    so the builder's default applies (``--set model.variant=null``). With ``spec``, ``name`` is cleared:
    run folders written before this rule record the default ``name: lenet5`` next to their ``spec``.
    """

    model_config = ConfigDict(extra="allow")
    name: ModelName | None = "lenet5"
    spec: str | dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _name_or_spec(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if v is not None or k in ("name", "spec")}
        if data.get("spec") is not None:
            data["name"] = None
        elif "name" in data and data["name"] is None:
            raise PydanticCustomError(
                "model_name_or_spec", "expected a model name (cnnkit models) or a model spec (model.spec: net.yaml)"
            )
        return data

    def builder_kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def as_dict(self) -> dict[str, Any]:
        """``{"name": ..., **kwargs}`` or ``{"spec": ...}``: what :func:`cnnkit.models.build_model` takes."""
        if self.spec is not None:
            return {"spec": self.spec, **self.builder_kwargs()}
        return {"name": self.name, **self.builder_kwargs()}


class TaskConfig(BaseModel):
    """``task: NAME`` or ``task: {name: NAME, **kwargs}``: a task from :data:`cnnkit.tasks.TASKS` and its
    constructor's keyword arguments (``task: {name: forecasting, horizon: 24}``).

    Like the model's, the keyword arguments are checked against the task class's signature when the task
    is created (:func:`cnnkit.tasks.create_task`): an unknown one is a one-line error with close matches.
    A keyword argument set to ``null`` is dropped, so the task's default applies.
    """

    model_config = ConfigDict(extra="allow")
    name: TaskName = "classification"

    @model_validator(mode="before")
    @classmethod
    def _name_or_mapping(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None or k == "name"}
        return data

    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _source_options(data: DataConfig) -> DataConfig:
    """Check ``data``'s extra keys against the options its dataset declares (``data.dataset: GunPoint``
    for ``ucr``); done when the config is validated, through the dataset registry (see the module docstring
    for why it is imported then)."""
    extra = dict(data.model_extra or {})
    if not extra:
        return data
    spec = importlib.import_module("cnnkit.data").DATASETS.get(data.name)
    options = getattr(spec, "options", None)
    if options is None:
        key = next(iter(extra))
        raise PydanticCustomError(
            "whole_line", "{message}",
            {"message": f"config key data.{key}: unknown key{did_you_mean(key, list(DataConfig.model_fields)) or ''} "
                        f"(dataset {data.name!r} takes no options of its own)"},
        )
    try:
        checked = options.model_validate(extra)
    except ValidationError as exc:
        msg = format_validation_error(exc, options, "data")
        if "unknown key" in msg and "did you mean" not in msg:
            msg += f" (keys of data, or options of dataset {data.name!r}: {', '.join(options.model_fields)})"
        raise PydanticCustomError("whole_line", "{message}", {"message": msg}) from None
    # Store the options as validated (coerced), only those the user gave: defaults stay the source's.
    data.__pydantic_extra__ = {k: v for k, v in checked.model_dump().items() if k in extra}
    return data


class ElasticConfig(_Strict):
    """Elastic deformation (Simard et al. 2003): a random displacement field smoothed by a Gaussian of
    width ``sigma`` pixels and scaled by ``alpha`` pixels."""

    key_path: ClassVar[str] = "data.augment.elastic"
    alpha: FiniteFloat = Field(34.0, ge=0)
    sigma: FiniteFloat = Field(4.0, gt=0)
    p: FiniteFloat = Field(0.5, ge=0, le=1)


class AugmentConfig(_Strict):
    """Batched, on-device augmentations; all off by default. Each is deterministic for a given seed."""

    key_path: ClassVar[str] = "data.augment"
    crop_padding: StrictInt = Field(0, ge=0, description="random crop after zero-padding by this many pixels")
    translate: StrictInt = Field(0, ge=0, description="random translation by up to this many pixels")
    hflip: bool = False
    hflip_alternate: bool = Field(
        False,
        description="derandomized flips (Jordan 2024, Sec. 3.6): epoch 0 mirrors a seeded random half of the "
        "images, each later epoch mirrors exactly those the previous epoch did not; needs hflip",
    )
    vflip: bool = False
    rotate: FiniteFloat = Field(0.0, ge=0, le=180, description="max rotation in degrees (one affine warp)")
    scale: tuple[FiniteFloat, FiniteFloat] | None = Field(None, description="random scale range, e.g. [0.9, 1.1]")
    elastic: ElasticConfig | None = None
    erasing: FiniteFloat = Field(0.0, ge=0, le=1, description="probability of random erasing (Zhong et al. 2020)")
    cutout: StrictInt = Field(0, ge=0, description="side of a square cutout (DeVries & Taylor 2017); 0 = off")

    @model_validator(mode="after")
    def _alternate_needs_hflip(self) -> AugmentConfig:
        if self.hflip_alternate and not self.hflip:
            raise PydanticCustomError(
                "whole_line", "{message}",
                {"message": "config key data.augment.hflip_alternate: needs data.augment.hflip: true"},
            )
        return self


class DataConfig(_Strict):
    """Where the data comes from and how it is batched.

    Keys beyond these are the dataset's own options (``data: {name: ucr, dataset: GunPoint}``), declared
    by its source as a pydantic model (:attr:`cnnkit.data.DatasetSpec.options`) and checked strictly
    against it; :meth:`options` returns them.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True, allow_inf_nan=False)
    key_path: ClassVar[str] = "data"
    name: DatasetName = "digits"
    root: str | None = None
    batch_size: StrictInt = Field(64, ge=1)
    eval_batch_size: StrictInt = Field(512, ge=1)
    val_fraction: FiniteFloat = Field(0.0, ge=0, lt=1, description="validation carved from train, seeded, stratified")
    test_fraction: FiniteFloat = Field(0.25, gt=0, lt=1, description="for datasets without a test split (digits)")
    split_seed: StrictInt = 0
    folds: StrictInt | None = Field(None, ge=2, description="k-fold cross-validation: number of folds")
    fold: StrictInt | None = Field(None, ge=0, description="k-fold cross-validation: this run's validation fold")
    stratified: bool = True
    fit: Literal["auto", "pad", "resize"] = Field(
        "auto", description="bring images to the model's input size: pad (as LeNet-5 did with MNIST) or resize"
    )
    input_size: tuple[StrictInt, StrictInt] | None = Field(None, description="override the model's input (H, W)")
    normalize: bool = True
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    loader: Literal["auto", "memory", "stream"] = "auto"
    num_workers: StrictInt = Field(0, ge=0)
    limit_train: StrictInt | None = Field(None, ge=1, description="use only the first N training images (quick runs)")
    limit_test: StrictInt | None = Field(None, ge=1)
    device_data: bool = Field(True, description="keep in-memory datasets on the training device as uint8")

    _check_options = model_validator(mode="after")(_source_options)

    def options(self) -> dict[str, Any]:
        """The dataset's own options (the keys beyond the common ones)."""
        return dict(self.model_extra or {})


class CheckpointConfig(_Strict):
    key_path: ClassVar[str] = "train.checkpoint"
    every_epochs: StrictInt | None = Field(1, ge=1)
    every_steps: StrictInt | None = Field(None, ge=1)
    keep_last: StrictInt = Field(2, ge=1)
    keep_best: bool = True


class EarlyStoppingConfig(_Strict):
    key_path: ClassVar[str] = "train.early_stopping"
    monitor: str = "val_accuracy"
    mode: Literal["max", "min"] = "max"
    patience: StrictInt = Field(5, ge=1)
    min_delta: FiniteFloat = Field(0.0, ge=0)
    restore_best: bool = True


class EMAConfig(_Strict):
    key_path: ClassVar[str] = "train.ema"
    decay: FiniteFloat = Field(0.999, gt=0, lt=1)
    every_steps: StrictInt = Field(1, ge=1)
    evaluate_with_ema: bool = True
    ramp: Literal["num_updates", "cubic"] = Field(
        "num_updates", description="decay warm-up: TensorFlow's (1+n)/(10+n), or airbench's decay * progress^3"
    )
    lookahead: bool = Field(False, description="reset the training weights to the average after each update (airbench)")


class PenaltyConfig(_Strict):
    """Weight penalties added to the loss: l1 * sum|w| + l2 * sum w^2 / 2 (elastic net when both)."""

    key_path: ClassVar[str] = "train.penalty"
    l1: FiniteFloat = Field(0.0, ge=0)
    l2: FiniteFloat = Field(0.0, ge=0)
    params: Literal["weights", "all"] = Field("weights", description="'weights' excludes biases and norm parameters")


class TrainConfig(_Strict):
    key_path: ClassVar[str] = "train"
    epochs: StrictInt = Field(10, ge=1)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    device: str = "auto"
    channels_last: bool = False
    compile: bool = False
    deterministic: bool = False
    threads: StrictInt | None = Field(None, ge=1, description="CPU threads; default: physical cores")
    label_smoothing: FiniteFloat = Field(0.0, ge=0, lt=1)
    grad_clip: FiniteFloat | None = Field(None, gt=0, description="clip the global gradient norm to this value")
    max_norm: FiniteFloat | None = Field(None, gt=0, description="max-norm constraint applied after each step")
    penalty: PenaltyConfig = Field(default_factory=PenaltyConfig)
    ema: EMAConfig | None = None
    early_stopping: EarlyStoppingConfig | None = None
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    nan_policy: Literal["stop", "skip"] = "stop"
    freeze: str | list[str] | None = Field(None, description="parameter name prefixes to freeze, or 'features'")
    tta: Literal["none", "flip", "shift"] = "none"
    log_every: StrictInt = Field(50, ge=1)
    tensorboard: bool = False
    loss: LossName = Field(
        "softmax_cross_entropy", description="a name in cnnkit.layers.LOSSES (the old 'cross_entropy' is accepted)"
    )


class OptimConfig(_Strict):
    key_path: ClassVar[str] = "optim"
    name: OptimizerName = "sgd"
    lr: FiniteFloat = Field(0.05, gt=0)
    momentum: FiniteFloat = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: FiniteFloat = Field(0.0, ge=0, description="decoupled (AdamW) or coupled (others) weight decay")
    decay_bias_and_norm: bool = Field(False, description="by default biases and norm parameters get no decay")
    betas: tuple[FiniteFloat, FiniteFloat] = (0.9, 0.999)
    eps: FiniteFloat = Field(1e-8, gt=0)
    alpha: FiniteFloat = Field(0.99, gt=0, lt=1, description="RMSprop smoothing constant")
    rho: FiniteFloat = Field(0.9, gt=0, lt=1, description="Adadelta decay")
    bias_lr_scale: FiniteFloat = Field(1.0, gt=0, description="lr multiplier for norm-layer biases (airbench uses 64)")
    muon_lr: FiniteFloat = Field(0.24, gt=0, description="muon: lr of the conv filters (airbench94_muon: 0.24)")
    muon_momentum: FiniteFloat = Field(0.6, ge=0, lt=1, description="muon: momentum of the conv filters")


class ScheduleConfig(_Strict):
    key_path: ClassVar[str] = "schedule"
    name: ScheduleName = "none"
    warmup_epochs: FiniteFloat = Field(0.0, ge=0)
    step_size: StrictInt = Field(10, ge=1, description="step: epochs between decays")
    gamma: FiniteFloat = Field(0.1, gt=0, le=1)
    min_lr: FiniteFloat = Field(0.0, ge=0)
    pct_start: FiniteFloat = Field(0.25, gt=0, lt=1, description="onecycle: fraction of steps spent rising")
    final_lr_fraction: FiniteFloat = Field(0.0, ge=0, le=1, description="linear: lr at the end as a fraction of lr")


class EvalConfig(_Strict):
    key_path: ClassVar[str] = "eval"
    top_k: StrictInt = Field(5, ge=1)
    ece_bins: StrictInt = Field(15, ge=2)


def _env_name(name: str | None) -> str | None:
    """An environment name in its canonical spelling, checked by :mod:`cnnkit.rl.envs` (imported now, as the
    registries are: it imports only numpy), so ``--set env.name=breakot`` fails at load time, with close matches."""
    if name is None:
        return None
    try:
        return str(importlib.import_module("cnnkit.rl.envs").canonical_env_name(name))
    except ConfigError as exc:
        raise PydanticCustomError("unknown_name", "{message}", {"message": str(exc)}) from None


class EnvConfig(_Strict):
    """The environment an agent acts in (``task: dqn``): ``env: {name: breakout, num_envs: 4}``."""

    key_path: ClassVar[str] = "env"
    name: Annotated[str | None, AfterValidator(_env_name)] = Field(
        None, description="a MinAtar game (breakout, asterix, freeway, seaquest, space_invaders) or atari:<Game>"
    )
    num_envs: StrictInt = Field(1, ge=1, le=256, description="copies stepped as one vector (one batched forward pass)")
    sticky_actions: FiniteFloat = Field(0.1, ge=0, lt=1, description="probability of repeating the previous action")
    max_episode_frames: StrictInt = Field(18_000, ge=1, description="an episode is cut after this many agent steps")


# task.env / task.sticky_actions / task.max_episode_frames of the first DQN runs: they live in env now, and
# run folders written before must still load and resume.
_ENV_ALIASES = {"env": "name", "sticky_actions": "sticky_actions", "max_episode_frames": "max_episode_frames"}


def _move_env_aliases(data: Any) -> Any:
    task = data.get("task") if isinstance(data, dict) else None
    if not isinstance(task, dict) or task.get("name") != "dqn" or not set(task) & set(_ENV_ALIASES):
        return data
    data, task = dict(data), dict(task)
    env = dict(data.get("env") or {})
    for old, new in _ENV_ALIASES.items():
        if old in task:
            value = task.pop(old)
            if new in env and env[new] != value:
                raise PydanticCustomError(
                    "whole_line", "{message}",
                    {"message": f"config key task.{old}: moved to env.{new}, which says {env[new]!r}; give it once, as env.{new}"},
                )
            env[new] = value
    data["task"], data["env"] = task, env
    return data


class Config(_Strict):
    """A whole run: seed, model, data, training, optimizer, schedule and evaluation settings."""

    seed: StrictInt = 0
    name: str | None = Field(None, description="run name; default: the config file's stem or 'default'")
    task: TaskConfig = Field(default_factory=TaskConfig, description="what the model learns: a name in cnnkit.tasks.TASKS")
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    env: EnvConfig = Field(default_factory=EnvConfig, description="the environment of task dqn")

    @model_validator(mode="before")
    @classmethod
    def _env_aliases(cls, data: Any) -> Any:
        return _move_env_aliases(data)
