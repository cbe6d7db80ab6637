"""Tasks: how a batch becomes a loss, metrics and predictions (see :mod:`cnnkit.tasks.base`)."""

from .anomaly import Anomaly as Anomaly
from .base import TASKS as TASKS
from .base import StepOutput as StepOutput
from .base import Task as Task
from .base import create_task as create_task
from .base import register_task as register_task
from .classification import Classification as Classification
from .detection import Detection as Detection
from .forecasting import Forecasting as Forecasting
from .gan import GAN as GAN
from .interactive import RUNNER_TASKS as RUNNER_TASKS
from .masked_autoencoder import MaskedAutoencoder as MaskedAutoencoder
from .multilabel import MultiLabel as MultiLabel
from .regression import Regression as Regression
from .segmentation import Segmentation as Segmentation

__all__ = [
    "TASKS", "StepOutput", "Task", "create_task", "register_task", "Classification", "MultiLabel", "Regression",
    "RUNNER_TASKS", "GAN", "MaskedAutoencoder", "Forecasting", "Anomaly", "Segmentation", "Detection",
]
