"""Object detection: anchors, matching, the region proposal network, the Fast R-CNN head and Faster R-CNN."""

from .anchors import AnchorGenerator as AnchorGenerator
from .faster_rcnn import FasterRCNN as FasterRCNN
from .faster_rcnn import faster_rcnn as faster_rcnn
from .faster_rcnn import faster_rcnn_spp as faster_rcnn_spp
from .faster_rcnn import split_targets as split_targets
from .losses import DetectionLosses as DetectionLosses
from .losses import fast_rcnn_loss as fast_rcnn_loss
from .losses import smooth_l1 as smooth_l1
from .matching import BalancedSampler as BalancedSampler
from .matching import Matcher as Matcher
from .roi_heads import RoIHeads as RoIHeads
from .roi_heads import SpatialPyramidRoIPool as SpatialPyramidRoIPool
from .roi_heads import rois_of as rois_of
from .rpn import RegionProposalNetwork as RegionProposalNetwork

__all__ = [
    "AnchorGenerator", "BalancedSampler", "DetectionLosses", "FasterRCNN", "Matcher", "RegionProposalNetwork",
    "RoIHeads", "SpatialPyramidRoIPool", "fast_rcnn_loss", "faster_rcnn", "faster_rcnn_spp", "rois_of", "smooth_l1", "split_targets",
]
