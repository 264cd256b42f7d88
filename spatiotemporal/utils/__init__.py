"""Ground floor shared by every other floor: atomic file writes, the device resolver, global seeding, the base of
user-facing errors, the non-finite tensor check.

Imports only the standard library, NumPy and torch (never another part of the package).
"""

from .atomic import (
    atomic_copy,
    atomic_torch_save,
    atomic_write,
    atomic_write_text,
    ensure_generated,
    remove_orphaned_temp_files,
)
from .device import resolve_device
from .errors import SpatioUserError, UnknownNameError, UnknownOptionError, UserInputError, user_error_in
from .finite import non_finite
from .seeding import seed_everything

__all__ = [
    "atomic_copy", "atomic_torch_save", "atomic_write", "atomic_write_text", "ensure_generated",
    "remove_orphaned_temp_files", "resolve_device", "seed_everything",
    "SpatioUserError", "UnknownNameError", "UnknownOptionError", "UserInputError", "user_error_in", "non_finite",
]
