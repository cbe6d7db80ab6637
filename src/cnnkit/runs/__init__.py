"""Run folders: the one owner of their contract and of every file in them.

- :mod:`~cnnkit.runs.io`: the one atomic writer, ``read_json`` and one-line write errors;
- :mod:`~cnnkit.runs.folder`: the ``.cnnkit-run`` marker, what may be created or replaced, ``env.json``;
- :mod:`~cnnkit.runs.model_io`: ``model.safetensors`` + ``model.json`` (no pickle), loaded with bounds;
- :mod:`~cnnkit.runs.metrics_log`: ``metrics.jsonl``, one row per epoch, exact across resumes;
- :mod:`~cnnkit.runs.run_data`: a run's data splits rebuilt with its recorded preprocessing;
- :mod:`~cnnkit.runs.listing`: the run folders under a folder and their status (``cnnkit runs``).
"""

from .folder import RUN_MARKER as RUN_MARKER
from .folder import check_run_dir as check_run_dir
from .folder import environment_info as environment_info
from .folder import is_run_dir as is_run_dir
from .folder import make_run_dir as make_run_dir
from .io import atomic_write_bytes as atomic_write_bytes
from .io import atomic_write_text as atomic_write_text
from .io import read_json as read_json
from .io import write_error as write_error
from .listing import RunInfo as RunInfo
from .listing import list_runs as list_runs
from .listing import run_info as run_info
from .metrics_log import MetricsLog as MetricsLog
from .metrics_log import json_safe as json_safe
from .model_io import MODEL_FORMAT as MODEL_FORMAT
from .model_io import LoadedModel as LoadedModel
from .model_io import load_model as load_model
from .model_io import save_model as save_model
from .model_io import unwrap_model as unwrap_model
from .run_data import RunData as RunData
from .run_data import load_run_data as load_run_data
from .run_data import split_batches as split_batches
from .run_data import split_loader as split_loader

__all__ = [
    "MODEL_FORMAT", "RUN_MARKER", "LoadedModel", "MetricsLog", "RunData", "atomic_write_bytes", "atomic_write_text",
    "check_run_dir", "environment_info", "is_run_dir", "json_safe", "load_model", "load_run_data", "make_run_dir",
    "read_json", "save_model", "RunInfo", "list_runs", "run_info", "split_batches", "split_loader", "unwrap_model", "write_error",
]
