"""Dataset sources, one module per file format. Each holds its reader, the datasets that use it (their
:class:`~cnnkit.data.DatasetSpec`, registered in :data:`~cnnkit.data.DATASETS` on import) and where their
files are downloaded from (:class:`~cnnkit.data.download.Resources`):

- :mod:`.idx`: IDX files: ``mnist``, ``fashion-mnist``, ``kmnist``;
- :mod:`.cifar`: CIFAR binary records: ``cifar10``, ``cifar100``;
- :mod:`.folder`: PNG/JPEG files, one sub-folder per class: ``image-folder``;
- :mod:`.arrays`: ``.npz`` files: ``npz`` (and ``.npy`` files for ``predict``);
- :mod:`.digits`: scikit-learn's bundled 8x8 digits: ``digits``;
- :mod:`.ucr`: UCR/UEA ``.ts`` files (:mod:`.ts_format`): ``ucr``; :mod:`.series_sources`: ``series-npz``, ``mnist1d``;
  :mod:`.series_csv`: one series per row of delimited text: ``series-csv``.
- :mod:`.image_targets`: images with several labels or real values: ``image-csv`` (and ``npz`` targets);
- :mod:`.text`: UTF-8 texts: ``text-csv``, ``text-folder``;
- :mod:`.moving_mnist`: generated Moving-MNIST clips: ``moving-mnist``;
- :mod:`.video`: clips as frame folders or arrays: ``video-folder``, ``video-npz``;
- :mod:`.scenes`: generated scenes with class masks and COCO boxes: ``scenes``;
- :mod:`.coco`: COCO-format detection annotations beside an image folder: ``coco-folder``;
- :mod:`.segmentation`: images + masks: ``segmentation-folder``, ``segmentation-npz`` (and the scenes' masks).
"""

from . import coco as coco  # registers `coco-folder` and the scenes' `boxes` targets
from . import digits as digits  # registers `digits` (a module with no public names)
from . import image_targets as image_targets  # registers `image-csv`
from . import moving_mnist as moving_mnist  # registers `moving-mnist`
from . import scenes as scenes  # registers `scenes`
from . import segmentation as segmentation  # registers `segmentation-folder`, `segmentation-npz`
from . import text as text  # registers `text-csv`, `text-folder`
from . import video as video  # registers `video-folder`, `video-npz`
from .arrays import images_to_uint8_nchw as images_to_uint8_nchw
from .arrays import load_npy as load_npy
from .cifar import CIFAR10_CLASSES as CIFAR10_CLASSES
from .cifar import read_cifar_records as read_cifar_records
from .folder import FolderIndex as FolderIndex
from .folder import ImageFileDataset as ImageFileDataset
from .folder import read_image as read_image
from .folder import scan_image_folder as scan_image_folder
from .folder import split_files as split_files
from .idx import IDX_FILES as IDX_FILES
from .idx import read_idx as read_idx
from .ts_format import read_ts as read_ts

__all__ = [
    "CIFAR10_CLASSES", "FolderIndex", "IDX_FILES", "ImageFileDataset", "images_to_uint8_nchw", "load_npy",
    "read_cifar_records", "read_idx", "read_image", "read_ts", "scan_image_folder", "split_files",
]
