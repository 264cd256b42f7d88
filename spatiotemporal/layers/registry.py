"""One registry of token mixers and feed-forward layers, picked by name; arguments are validated.

A mixer registers itself in its own file with ``@register_mixer("name")`` (``@register_ffn`` for FFNs).
"""

from __future__ import annotations

import difflib
import inspect

from torch import nn

from ..utils.errors import UnknownNameError, UnknownOptionError
from .grid import GridLayout
from .mixer import FFN_CONTRACT, MIXER_CONTRACT, TokenMixer

MIXERS: dict[str, type[TokenMixer]] = {}
FFNS: dict[str, type[TokenMixer]] = {}


def _register(table: dict, name: str):
    def deco(cls):
        if name in table and table[name] is not cls:
            raise KeyError(f"{name!r} is registered twice ({table[name].__name__} and {cls.__name__})")
        table[name] = cls
        cls.registered_name = name
        return cls

    return deco


def register_mixer(name: str):
    """Class decorator: make a :class:`TokenMixer` available to every model as ``mixer=name``."""
    return _register(MIXERS, name)


def register_ffn(name: str):
    """Class decorator: make a feed-forward layer available as ``ffn=name``."""
    return _register(FFNS, name)


def _lookup(table: dict, name: str, what: str):
    if name not in table:
        close = difflib.get_close_matches(str(name), list(table), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownNameError(f"unknown {what} {name!r}.{hint} Registered: {', '.join(sorted(table))}")
    return table[name]


def own_options(cls: type, contract: tuple[str, ...]) -> list[str]:
    """The keyword options a mixer class takes beyond the contract's arguments."""
    params = inspect.signature(cls).parameters
    return [n for n, p in list(params.items())[1:] if n not in contract and p.kind is not p.VAR_KEYWORD]


def _check_options(cls: type, name: str, what: str, contract: tuple[str, ...], kwargs: dict) -> None:
    valid = own_options(cls, contract)
    clash = sorted(set(kwargs) & set(contract))
    if clash:
        raise UnknownOptionError(f"{what} {name!r}: {clash} are set by the model, not in {what}_kwargs")
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        hints = [m for k in unknown for m in difflib.get_close_matches(k, valid, n=1)]
        hint = f" Did you mean {hints}?" if hints else ""
        raise UnknownOptionError(f"{what} {name!r} got unknown argument(s) {unknown}.{hint} "
                                 f"Valid: {valid if valid else 'none'}")


def build_mixer(name: str, dim: int, *, num_heads: int, layout: GridLayout, qkv_bias: bool = True,
                norm_layer=nn.LayerNorm, kwargs: dict | None = None) -> TokenMixer:
    """A mixer by name; ``forward(x (B, P+N, C), grid, num_prefix) -> update (B, P+N, C)``."""
    cls = _lookup(MIXERS, name, "mixer")
    kwargs = dict(kwargs or {})
    _check_options(cls, name, "mixer", MIXER_CONTRACT, kwargs)
    return cls(dim, num_heads=num_heads, layout=layout, qkv_bias=qkv_bias, norm_layer=norm_layer, **kwargs)


def build_ffn(name: str, dim: int, *, hidden_dim: int, layout: GridLayout, norm_layer=nn.LayerNorm,
              kwargs: dict | None = None) -> TokenMixer:
    """A feed-forward layer by name; same call signature as the mixers."""
    cls = _lookup(FFNS, name, "ffn")
    kwargs = dict(kwargs or {})
    _check_options(cls, name, "ffn", FFN_CONTRACT, kwargs)
    return cls(dim, hidden_dim=hidden_dim, layout=layout, norm_layer=norm_layer, **kwargs)


def list_mixers() -> list[str]:
    return sorted(MIXERS)
