"""Training: the loop, optimizers and schedules, regularizers, precision, checkpoints and exact resume,
signals, NaN policy, transfer learning and DDP.

``fit(config)`` is what ``cnnkit train`` runs; :class:`Trainer` trains any ``nn.Module`` from Python.
"""

from ..runtime import physical_cores as physical_cores
from .checkpoint import CheckpointError as CheckpointError
from .checkpoint import load_latest_checkpoint as load_latest_checkpoint
from .checkpoint import read_checkpoint as read_checkpoint
from .checkpoint import write_checkpoint as write_checkpoint
from .cv import cross_validate as cross_validate
from .cv import format_cv as format_cv
from .early_stopping import EarlyStopping as EarlyStopping
from .ema import ModelEMA as ModelEMA
from .fit import fit as fit
from .optim import OPTIMIZERS as OPTIMIZERS
from .optim import build_optimizer as build_optimizer
from .optim import param_groups as param_groups
from .regularizers import max_norm_ as max_norm_
from .regularizers import penalty_loss as penalty_loss
from .schedules import SCHEDULES as SCHEDULES
from .schedules import build_schedule as build_schedule
from .signals import RESUMABLE_EXIT_CODE as RESUMABLE_EXIT_CODE
from .trainer import Trainer as Trainer
from .trainer import TrainingError as TrainingError
from .trainer import TrainingInterrupted as TrainingInterrupted
from .transfer import freeze as freeze
from .transfer import load_matching_weights as load_matching_weights

__all__ = [
    "fit", "cross_validate", "format_cv", "Trainer", "TrainingError", "TrainingInterrupted", "RESUMABLE_EXIT_CODE",
    "OPTIMIZERS", "SCHEDULES", "build_optimizer", "build_schedule", "param_groups",
    "EarlyStopping", "ModelEMA", "penalty_loss", "max_norm_", "physical_cores",
    "CheckpointError", "write_checkpoint", "read_checkpoint", "load_latest_checkpoint",
    "freeze", "load_matching_weights",
]
