"""Insight into trained networks: attribution maps (Captum), filters and feature maps, and the
translation audit (shift consistency and feature-map equivariance)."""

from .attribution import ATTRIBUTION_METHODS as ATTRIBUTION_METHODS
from .attribution import attribute as attribute
from .attribution import no_leftover_hooks as no_leftover_hooks
from .audit import audit as audit
from .audit import audit_model as audit_model
from .audit import equivariance_errors as equivariance_errors
from .audit import format_audit as format_audit
from .audit import shift_consistency as shift_consistency
from .maps import feature_maps as feature_maps
from .maps import filter_images as filter_images
from .run import METHODS as METHODS
from .run import Explanation as Explanation
from .run import explain as explain
from .run import explain_model as explain_model

__all__ = [
    "explain", "explain_model", "Explanation", "METHODS", "ATTRIBUTION_METHODS", "attribute",
    "no_leftover_hooks", "feature_maps", "filter_images",
    "audit", "audit_model", "shift_consistency", "equivariance_errors", "format_audit",
]
