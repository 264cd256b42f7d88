"""Recipes as YAML files over nested-dataclass schemas, with ``key=value`` command-line overrides.

Resolution order: dataclass defaults, then the YAML file, then the overrides (dotted keys such as
``optim.lr=0.01`` or ``model.overrides.drop_path_rate=0.2``). Every value is checked and coerced
against its field's type; unknown keys are rejected with the valid keys at that level.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import pathlib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Union

import yaml

from .atomic import atomic_write_text
from .errors import SpatioUserError
from .keyvalue import parse_key_values

__all__ = ["ConfigError", "load_config", "dump_config", "config_to_dict", "parse_overrides", "read_yaml"]

_MISSING = object()


class ConfigError(SpatioUserError, ValueError):
    """A recipe or override that does not fit the schema."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The resolved field types of a config class (cached: resolving them is most of a recipe's load time)."""
    return typing.get_type_hints(cls)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``Optional[X]`` -> ``(X, True)``; other types -> ``(tp, False)``."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(tp)):
            return args[0], True
    return tp, False


def _is_dict_type(tp: Any) -> bool:
    tp, _ = _unwrap_optional(tp)
    return tp is dict or typing.get_origin(tp) is dict or tp is typing.Dict  # noqa: UP006


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _fail(key: str, source: str, msg: str) -> typing.NoReturn:
    raise ConfigError(f"{source}: key '{key}': {msg}")


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert it (str -> float, list -> tuple...)."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            _fail(key, source, f"null is not allowed, expected {_type_name(tp)}")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, source)
            except ConfigError as e:
                errors.append(str(e).split(": ", 2)[-1])
        _fail(key, source, f"{value!r} does not match {_type_name(tp)} ({'; '.join(errors)})")
    if value is None:
        _fail(key, source, f"null is not allowed, expected {_type_name(tp)}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if any(value == c and type(value) is type(c) for c in choices):
            return value
        _fail(key, source, f"{value!r} is not one of {list(choices)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        _fail(key, source, f"expected a bool (true/false), got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            _fail(key, source, f"expected an int, got bool {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        _fail(key, source, f"expected an int, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            _fail(key, source, f"expected a float, got bool {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):  # PyYAML reads "1e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        _fail(key, source, f"expected a float, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        _fail(key, source, f"expected a string, got {value!r}")
    if tp is pathlib.Path:
        if isinstance(value, (str, pathlib.Path)):
            return pathlib.Path(value)
        _fail(key, source, f"expected a path string, got {value!r}")
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            _fail(key, source, f"expected a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                _fail(key, source, f"expected {len(args)} items, got {len(value)}: {value!r}")
            items = [_coerce(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_tp = args[0] if args else Any
            items = [_coerce(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if _is_dict_type(tp):
        if not isinstance(value, Mapping):
            _fail(key, source, f"expected a mapping, got {value!r}")
        return dict(value)
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        _fail(key, source, f"expected a mapping for section {_type_name(tp)}, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    _fail(key, source, f"unsupported value {value!r} for type {_type_name(tp)}")


def config_to_dict(cfg: Any) -> Any:
    """Nested dataclass -> plain dict of YAML-safe values (tuples -> lists, paths -> str)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Mapping):
        return {str(k): config_to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, pathlib.PurePath):
        return str(cfg)
    return cfg


def _unknown_key(key: str, valid: Iterable[str], where: str, source: str) -> typing.NoReturn:
    valid = sorted(valid)
    name = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    level = f"in section '{where}'" if where else "at the top level"
    raise ConfigError(
        f"{source}: unknown key '{key}' {level}.{hint} Valid keys: {', '.join(valid)}"
    )


def _field_types(cls: type) -> dict[str, Any]:
    hints = _hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _merge_dict(dst: dict, src: Mapping, prefix: str) -> None:
    """Deep-merge a free-form mapping into ``dst`` (nested mappings merge, others replace)."""
    for k, v in src.items():
        if isinstance(v, Mapping) and isinstance(dst.get(k), dict):
            _merge_dict(dst[k], v, f"{prefix}.{k}")
        else:
            dst[k] = dict(v) if isinstance(v, Mapping) else v


def _merge_section(tree: dict, cls: type, data: Any, prefix: str, source: str) -> None:
    """Merge a YAML mapping ``data`` into the resolved ``tree`` of section ``cls``, validating keys."""
    if not isinstance(data, Mapping):
        where = f"section '{prefix}'" if prefix else "the top level"
        raise ConfigError(f"{source}: expected a mapping for {where}, got {data!r}")
    ftypes = _field_types(cls)
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in ftypes:
            _unknown_key(key, ftypes, prefix, source)
        _set_value(tree, cls, str(k), v, key, source)


def _set_value(tree: dict, cls: type, name: str, value: Any, key: str, source: str) -> None:
    tp = _field_types(cls)[name]
    inner, optional = _unwrap_optional(tp)
    if _is_dataclass_type(inner) and not (value is None and optional):
        if not isinstance(value, Mapping):
            _fail(key, source, f"expected a mapping for section {_type_name(inner)}, got {value!r}")
        if tree.get(name) is None:
            tree[name] = config_to_dict(inner())
        _merge_section(tree[name], inner, value, key, source)
    elif _is_dict_type(tp) and isinstance(value, Mapping) and isinstance(tree.get(name), dict):
        _merge_dict(tree[name], value, key)
    else:
        tree[name] = _coerce(value, tp, key, source)


def parse_overrides(overrides: Iterable[str]) -> list[tuple[str, Any]]:
    """``["optim.lr=0.01", ...]`` -> ``[("optim.lr", 0.01), ...]`` (YAML values); a malformed one is a
    :class:`ConfigError`."""
    return parse_key_values(overrides, where="command line", example="optim.lr=0.01", error=ConfigError)


def _apply_override(tree: dict, cls: type, key: str, value: Any, source: str) -> None:
    parts = key.split(".")
    node, section, prefix = tree, cls, ""
    for i, part in enumerate(parts):
        path = ".".join(parts[: i + 1])
        ftypes = _field_types(section)
        if part not in ftypes:
            _unknown_key(path, ftypes, prefix, source)
        last = i == len(parts) - 1
        if last:
            _set_value(node, section, part, value, path, source)
            return
        tp = ftypes[part]
        inner, _ = _unwrap_optional(tp)
        if _is_dataclass_type(inner):
            if node.get(part) is None:
                node[part] = config_to_dict(inner())
            node, section, prefix = node[part], inner, path
        elif _is_dict_type(tp):
            # free-form mapping: create the nested sub-keys as needed
            sub = node.get(part)
            if sub is None:
                sub = node[part] = {}
            for sub_part in parts[i + 1 : -1]:
                if not isinstance(sub.get(sub_part), dict):
                    sub[sub_part] = {}
                sub = sub[sub_part]
            sub[parts[-1]] = value
            return
        else:
            _fail(path, source, f"is a {_type_name(tp)}, it has no sub-key '{parts[i + 1]}'")


def _build(cls: type, tree: Mapping, prefix: str = "") -> Any:
    """The dataclass of ``tree``; a ``ValueError`` of a section's own checks (``__post_init__``) becomes a
    :class:`ConfigError` naming the section."""
    kwargs = {}
    for name, tp in _field_types(cls).items():
        if name not in tree:
            continue
        value = tree[name]
        inner, _ = _unwrap_optional(tp)
        if _is_dataclass_type(inner) and isinstance(value, Mapping):
            value = _build(inner, value, f"{prefix}.{name}" if prefix else name)
        elif _is_dataclass_type(inner) and value is not None and not isinstance(value, inner):
            raise ConfigError(f"key '{name}': expected section {_type_name(inner)}, got {value!r}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"section '{prefix}': {e}" if prefix else str(e)) from e


def read_yaml(path: str | pathlib.Path) -> Any:
    """A YAML file's content; ``FileNotFoundError`` if missing, :class:`ConfigError` (``file:line:column``) if it
    is not valid YAML."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start}); expected a YAML "
                          "recipe") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        what = " ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x) or str(e)
        raise ConfigError(f"{where}: not valid YAML ({what})") from e


def load_config(schema_cls: type, source: str | pathlib.Path | Mapping | None = None, overrides: Iterable[str] = (),
                source_name: str | None = None):
    """Resolve a config: ``schema_cls()`` defaults <- ``source`` (a YAML file, or a mapping such as the data
    section stored in a checkpoint) <- ``key=value`` overrides.

    Raises ``ConfigError`` naming the key, its source (file path, ``source_name`` or "command line"), the valid
    keys at that level and the closest match for an unknown key; ``FileNotFoundError`` for a missing file.
    """
    if not _is_dataclass_type(schema_cls):
        raise TypeError(f"schema_cls must be a dataclass type, got {schema_cls!r}")
    tree = config_to_dict(schema_cls())
    if isinstance(source, Mapping):
        _merge_section(tree, schema_cls, source, "", source_name or "stored config")
    elif source is not None:
        path = pathlib.Path(source)
        data = read_yaml(path)
        if data is not None:
            _merge_section(tree, schema_cls, data, "", str(path))
    for key, value in parse_overrides(overrides):
        _apply_override(tree, schema_cls, key, value, "command line")
    # re-coerce the defaults (e.g. list defaults for tuple fields) so the instance is canonical
    _canonicalise(tree, schema_cls)
    return _build(schema_cls, tree)


def _canonicalise(tree: dict, cls: type) -> None:
    for name, tp in _field_types(cls).items():
        inner, _ = _unwrap_optional(tp)
        if _is_dataclass_type(inner) and isinstance(tree.get(name), dict):
            _canonicalise(tree[name], inner)
        elif name in tree:
            tree[name] = _coerce(tree[name], tp, name, "defaults")


def dump_config(cfg: Any, path: str | pathlib.Path) -> None:
    """Write the resolved config as YAML, atomically (temp file + fsync + rename)."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)
    atomic_write_text(pathlib.Path(path), text)
