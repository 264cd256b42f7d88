"""utils is the ground floor: none of its modules imports another part of the package."""

from __future__ import annotations

import ast
from pathlib import Path

import spatiotemporal.utils

UTILS = Path(spatiotemporal.utils.__file__).parent


def test_utils_imports_nothing_of_the_package():
    files = sorted(UTILS.glob("*.py"))
    assert {f.name for f in files} >= {"__init__.py", "atomic.py", "device.py", "seeding.py"}
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1 and not (node.module or "").startswith("spatiotemporal"), (f.name, node.module)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("spatiotemporal") for a in node.names), f.name
