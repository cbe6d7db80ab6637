"""One home for figures: learning curves, evaluation pictures, explanation overlays.

Each function draws on its own :class:`~matplotlib.figure.Figure` (see :mod:`cnnkit.plots._figure`) and
never changes matplotlib's process-wide backend.
"""

from ._figure import new_figure as new_figure
from ._figure import save_figure as save_figure
from .curves import plot_learning_curves as plot_learning_curves
from .evaluation import confusion_matrix_text as confusion_matrix_text
from .evaluation import plot_confusion_matrix as plot_confusion_matrix
from .evaluation import plot_reliability as plot_reliability
from .explain import plot_feature_maps as plot_feature_maps
from .explain import plot_filters as plot_filters
from .explain import plot_overlay as plot_overlay
from .images import plot_image_grid as plot_image_grid
from .images import to_display as to_display
from .returns import plot_returns as plot_returns
from .returns import plot_series as plot_series
from .samples import save_image_grid as save_image_grid
from .samples import tile_images as tile_images

__all__ = [
    "new_figure", "save_figure", "plot_learning_curves", "confusion_matrix_text", "plot_confusion_matrix",
    "plot_reliability", "plot_feature_maps", "plot_filters", "plot_overlay", "plot_image_grid", "to_display",
    "save_image_grid", "tile_images",
    "plot_returns", "plot_series",
]
