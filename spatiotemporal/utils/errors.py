"""The one base of user-facing errors.

A :class:`SpatioUserError` is a failure the user can fix: a file, a flag, a recipe key, a checkpoint or input
data that is not what the command expects. It is raised where the cause is known, with a one-line message that
names the file (``file:line`` where there is one) or the key and says what was expected; the CLI prints it as
``spatio COMMAND: error: MESSAGE`` and exits with 2. Every other exception is a bug and keeps its traceback.

The package's dedicated errors (``ConfigError``, ``CheckpointError``, ``CheckpointFormatError``,
``VolumeDataError``, ``LabelsCSVError``, ``VideoDecodeError``, ``SegFolderError``, ``TrainingDiverged``,
``NoUsableSamples``) derive from it and from the builtin they have always been (``ValueError`` ...), so
``except ValueError`` code keeps working.
"""

from __future__ import annotations

__all__ = ["SpatioUserError", "UnknownNameError", "UnknownOptionError", "UserInputError", "user_error_in"]


class SpatioUserError(Exception):
    """A failure caused by the user's input; its message is one line that names what and what was expected."""


class UserInputError(SpatioUserError, ValueError):
    """A bad value of a flag, a recipe key or an input file, without a more specific type."""


class UnknownNameError(SpatioUserError, KeyError):
    """A name that no registry holds (a model, a family, a mixer); printed without ``KeyError``'s quotes."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownOptionError(SpatioUserError, TypeError):
    """A config key or an argument that a model or a mixer does not take (the message lists the valid ones)."""


def user_error_in(e: BaseException) -> SpatioUserError | None:
    """The first :class:`SpatioUserError` in ``e``'s chain of explicit causes (``raise ... from``: libraries such
    as MONAI re-raise what a transform raised as ``RuntimeError("applying transform ...") from e``), or None. An
    exception raised *while handling* a user error (``__context__`` only) is not caused by it: None."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, SpatioUserError):
            return e
        seen.add(id(e))
        e = e.__cause__
    return None
