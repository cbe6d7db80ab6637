"""Datasets, preprocessing, batched augmentation and fast loaders.

Registered datasets (:data:`DATASETS`), one source module each in :mod:`cnnkit.data.sources` (reader,
dataset specs and download resources together): ``digits`` (embedded default), ``mnist``,
``fashion-mnist``, ``kmnist`` (IDX), ``cifar10``, ``cifar100`` (binary archives), ``image-folder``
(PNG/JPEG) and ``npz``; video clips ``(C, T, H, W)``: ``moving-mnist`` (generated), ``video-folder`` and
``video-npz`` (:mod:`cnnkit.data.clips`). :func:`build_data` turns a data config into train / val / test loaders;
:func:`apply_preprocessing` replays the recorded preprocessing at predict time.
"""

from ._core import DATASETS as DATASETS
from ._core import ArrayDataset as ArrayDataset
from ._core import DatasetSpec as DatasetSpec
from ._core import dataset_status as dataset_status
from ._core import load_dataset as load_dataset
from ._core import search_dirs as search_dirs
from .augment import BatchAugment as BatchAugment
from .build import DataBundle as DataBundle
from .build import build_data as build_data
from .download import download_dataset as download_dataset
from .loader import InMemoryLoader as InMemoryLoader
from .loader import StreamingLoader as StreamingLoader
from .loader import TensorLoader as TensorLoader
from .preprocess import apply_preprocessing as apply_preprocessing
from .preprocess import prepare_images as prepare_images
from .preprocess import resolve_fit as resolve_fit

# Series sources build on build.py's DataBundle (which imports .sources), so they register here, after it.
from .sources import anomaly_csv as _anomaly_csv  # noqa: F401
from .sources import forecast_csv as _forecast_csv  # noqa: F401

# The source modules register their datasets when imported (here, for these names).
from .sources import load_npy as load_npy
from .sources import read_idx as read_idx
from .sources import read_image as read_image
from .sources import series_csv as _series_csv  # noqa: F401
from .sources import series_sources as _series_sources  # noqa: F401
from .sources import ucr as _ucr  # noqa: F401
from .splits import kfold_indices as kfold_indices
from .splits import split_indices as split_indices
from .splits import subset_indices as subset_indices

__all__ = [
    "DATASETS", "ArrayDataset", "DatasetSpec", "load_dataset", "search_dirs", "BatchAugment", "DataBundle",
    "build_data", "dataset_status", "download_dataset", "read_image", "read_idx", "InMemoryLoader",
    "StreamingLoader", "TensorLoader", "load_npy", "apply_preprocessing", "prepare_images", "resolve_fit", "kfold_indices", "split_indices",
    "subset_indices",
]
