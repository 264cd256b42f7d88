"""Ground floor shared by every other floor: atomic file writes, the device resolver, global seeding.

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
from .seeding import seed_everything

__all__ = [
    "atomic_copy", "atomic_torch_save", "atomic_write", "atomic_write_text", "ensure_generated",
    "remove_orphaned_temp_files", "resolve_device", "seed_everything",
]
