"""Tasks: how a batch becomes a loss, metrics and predictions (see :mod:`cnnkit.tasks.base`)."""

from .base import TASKS as TASKS
from .base import StepOutput as StepOutput
from .base import Task as Task
from .base import create_task as create_task
from .base import register_task as register_task
from .classification import Classification as Classification
from .detection import Detection as Detection
from .segmentation import Segmentation as Segmentation

__all__ = ["TASKS", "StepOutput", "Task", "create_task", "register_task", "Classification", "Detection", "Segmentation"]
