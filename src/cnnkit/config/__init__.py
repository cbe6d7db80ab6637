"""Run configs: a strict schema (pydantic) loaded from YAML with ``--set key.path=value`` overrides."""

from .loader import apply_overrides as apply_overrides
from .loader import config_to_yaml as config_to_yaml
from .loader import load_config as load_config
from .loader import parse_overrides as parse_overrides
from .loader import read_yaml as read_yaml
from .loader import validate_config as validate_config
from .schema import AugmentConfig as AugmentConfig
from .schema import CheckpointConfig as CheckpointConfig
from .schema import Config as Config
from .schema import DataConfig as DataConfig
from .schema import EarlyStoppingConfig as EarlyStoppingConfig
from .schema import EMAConfig as EMAConfig
from .schema import EnvConfig as EnvConfig
from .schema import EvalConfig as EvalConfig
from .schema import FiniteFloat as FiniteFloat
from .schema import ModelConfig as ModelConfig
from .schema import OptimConfig as OptimConfig
from .schema import PenaltyConfig as PenaltyConfig
from .schema import ScheduleConfig as ScheduleConfig
from .schema import StrictInt as StrictInt
from .schema import TrainConfig as TrainConfig

__all__ = [
    "Config", "ModelConfig", "DataConfig", "AugmentConfig", "TrainConfig", "CheckpointConfig",
    "EarlyStoppingConfig", "EMAConfig", "PenaltyConfig", "OptimConfig", "ScheduleConfig", "EvalConfig", "EnvConfig",
    "FiniteFloat", "StrictInt",
    "load_config", "parse_overrides", "apply_overrides", "validate_config", "config_to_yaml", "read_yaml",
]
