"""Datasets, preprocessing, batched augmentation and fast loaders.

Registered datasets (:data:`DATASETS`): ``digits`` (embedded default), ``mnist``, ``fashion-mnist``,
``kmnist`` (IDX), ``cifar10``, ``cifar100`` (binary archives), ``image-folder`` (PNG/JPEG) and ``npz``.
:func:`build_data` turns a data config into train / val / test loaders; :func:`apply_preprocessing`
replays the recorded preprocessing at predict time.
"""

# Importing the source modules registers their datasets.
from . import arrays as _arrays  # noqa: F401
from . import cifar as _cifar  # noqa: F401
from . import folder as _folder  # noqa: F401
from . import idx as _idx  # noqa: F401
from ._core import DATASETS as DATASETS
from ._core import ArrayDataset as ArrayDataset
from ._core import DatasetSpec as DatasetSpec
from ._core import load_dataset as load_dataset
from ._core import search_dirs as search_dirs
from .arrays import load_npy as load_npy
from .augment import BatchAugment as BatchAugment
from .build import DataBundle as DataBundle
from .build import build_data as build_data
from .download import dataset_status as dataset_status
from .download import download_dataset as download_dataset
from .folder import read_image as read_image
from .idx import read_idx as read_idx
from .loader import InMemoryLoader as InMemoryLoader
from .loader import StreamingLoader as StreamingLoader
from .preprocess import apply_preprocessing as apply_preprocessing
from .preprocess import prepare_images as prepare_images
from .preprocess import resolve_fit as resolve_fit
from .splits import kfold_indices as kfold_indices
from .splits import split_indices as split_indices
from .splits import subset_indices as subset_indices

__all__ = [
    "DATASETS", "ArrayDataset", "DatasetSpec", "load_dataset", "search_dirs", "BatchAugment", "DataBundle",
    "build_data", "dataset_status", "download_dataset", "read_image", "read_idx", "InMemoryLoader",
    "StreamingLoader", "load_npy", "apply_preprocessing", "prepare_images", "resolve_fit", "kfold_indices", "split_indices",
    "subset_indices",
]
