"""The house's floors, read from the source: a floor imports only the floors below it; no two modules import each
other (function-local imports included: they would only hide a circle); the thin floors (``cli``, ``viz``,
``pipelines``) name no model family and no mixer class in their code, so a new family or mixer needs no edit
there (a rule about one mixer lives in that mixer, as a hook)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import spatiotemporal
from spatiotemporal.layers.registry import FFNS, MIXERS
from spatiotemporal.models import ARCHS

PACKAGE = Path(spatiotemporal.__file__).parent
FLOORS = {"utils": 0, "layers": 1, "models": 2, "data": 2, "engine": 3, "viz": 3, "pipelines": 4, "cli": 5}
THIN = ("cli", "viz", "pipelines")


def _modules() -> dict[str, Path]:
    """Dotted module name -> file (a package is its ``__init__.py``)."""
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports anywhere in its file (``from .a import b``: ``a.b`` if a module, else
    ``a``)."""
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
            elif (node.module or "").startswith("spatiotemporal"):
                base = node.module
            else:
                continue
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
    return out & set(modules)


def test_a_floor_imports_only_the_floors_below():
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        floor = name.split(".")[1] if name.count(".") else None
        for dep in _imports(name, path, modules):
            other = dep.split(".")[1] if dep.count(".") else None
            if floor in FLOORS and other in FLOORS and other != floor and FLOORS[other] >= FLOORS[floor]:
                wrong.append(f"{name} -> {dep}")
    assert not wrong, wrong


def test_utils_imports_only_the_standard_library_numpy_torch_and_yaml():
    allowed = set(sys.stdlib_module_names) | {"numpy", "torch", "yaml"}
    used = set()
    for path in sorted((PACKAGE / "utils").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                used |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                used.add(node.module.split(".")[0])
    assert {"yaml", "torch"} <= used and used <= allowed, sorted(used - allowed)


def test_no_two_modules_import_each_other():
    """Module-to-module imports (a package's ``__init__`` re-exports left out) form no circle."""
    modules = _modules()
    edges = {n: {d for d in _imports(n, p, modules) if modules[d].name != "__init__.py"}
             for n, p in modules.items() if p.name != "__init__.py"}
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges[node]):
            if state.get(dep) == 1:
                circles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert not circles, circles


def _code_names(path: Path) -> set[str]:
    """Identifiers a file's code uses (names, attributes, imported names) and its short string constants."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.alias):
            out.add(node.asname or node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and " " not in node.value:
            out.add(node.value)
    return out


def test_thin_floors_name_no_model_family_and_no_mixer_class():
    families = set(ARCHS) | {cls.__name__ for cls in ARCHS.values()}
    mixers = {cls.__name__ for cls in (*MIXERS.values(), *FFNS.values())}
    assert {"timesformer", "TimeSformer", "unetr"} <= families and {"DividedAttention", "XCAttention"} <= mixers
    named = {}
    for floor in THIN:
        for path in sorted((PACKAGE / floor).rglob("*.py")):
            hits = _code_names(path) & (families | mixers)
            if hits:
                named[str(path.relative_to(PACKAGE))] = sorted(hits)
    assert not named, named
