"""Tasks: what the engine's trainer calls to compute a loss and evaluate, one per problem type."""

from .classification import ClassificationTask
from .segmentation import SegmentationTask, dice_table

__all__ = ["ClassificationTask", "SegmentationTask", "dice_table"]
