"""Evaluation: test-set reports, calibration, test-time augmentation, conformal prediction and prediction on
files. (k-fold cross-validation trains, so it lives in :mod:`cnnkit.train.cv`.)"""

from .backends import BACKENDS as BACKENDS
from .backends import run_backend as run_backend
from .backends import select_backend as select_backend
from .calibration import expected_calibration_error as expected_calibration_error
from .calibration import fit_temperature as fit_temperature
from .calibration import reliability_bins as reliability_bins
from .conformal import conformal_quantile as conformal_quantile
from .conformal import conformity_scores as conformity_scores
from .conformal import label_scores as label_scores
from .conformal import prediction_sets as prediction_sets
from .conformal import summarize_sets as summarize_sets
from .generate import generate as generate
from .generate import generate_run as generate_run
from .metrics import accuracy as accuracy
from .metrics import confusion_matrix as confusion_matrix
from .metrics import negative_log_likelihood as negative_log_likelihood
from .metrics import per_class_metrics as per_class_metrics
from .metrics import top_k_accuracy as top_k_accuracy
from .predict import predict as predict
from .report import evaluate_model as evaluate_model
from .report import evaluate_run as evaluate_run
from .report import format_report as format_report
from .tta import tta_log_probs as tta_log_probs

__all__ = [
    "evaluate_run", "evaluate_model", "format_report", "predict", "generate", "generate_run",
    "accuracy", "top_k_accuracy", "negative_log_likelihood", "confusion_matrix", "per_class_metrics",
    "reliability_bins", "expected_calibration_error", "fit_temperature",
    "label_scores", "conformity_scores", "conformal_quantile", "prediction_sets", "summarize_sets",
    "tta_log_probs", "BACKENDS", "run_backend", "select_backend",
]
