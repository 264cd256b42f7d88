"""Tasks: what the engine's trainer calls to compute a loss and evaluate, one per problem type."""

from .classification import ClassificationTask

__all__ = ["ClassificationTask"]
