"""timm / locuslab ConvMixer state dicts -> :class:`~spatiotemporal.models.ConvMixer`.

timm's layout: ``stem.{0,2}`` (conv, BatchNorm), ``blocks.i.0.fn.{0,2}`` (depthwise conv, BatchNorm),
``blocks.i.{1,3}`` (pointwise conv, BatchNorm), ``head``. locuslab's ``nn.Sequential`` numbers the same modules
``0, 2`` (stem), ``3+i`` (blocks) and the head last; both are read.
"""

from __future__ import annotations

import re

from . import Detected, register_converter
from .rename import rename_keys

_RULES = [
    (r"^stem\.0\.", "patch_embed.proj."),
    (r"^stem\.2\.", "stem_bn."),
    (r"^blocks\.(\d+)\.0\.fn\.0\.", r"encoder.blocks.\1.mixer.conv."),
    (r"^blocks\.(\d+)\.0\.fn\.2\.", r"encoder.blocks.\1.mixer.bn."),
    (r"^blocks\.(\d+)\.1\.", r"encoder.blocks.\1.ffn.pw."),
    (r"^blocks\.(\d+)\.3\.", r"encoder.blocks.\1.ffn.bn."),
    (r"^head\.", "head."),
]
#: Activations are not stored; the published configs that use ReLU, by (dim, depth, kernel, patch).
RELU_CONFIGS = {(768, 32, 7, 7)}


def _locuslab_to_timm(sd: dict) -> dict | None:
    """locuslab ``nn.Sequential`` keys (``0.weight``, ``3.0.fn.0.weight``, ...) in timm's names, else None."""
    if "0.weight" not in sd or "3.0.fn.0.weight" not in sd:
        return None
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"^(\d+)\.0\.fn\.", k))})
    head = max(int(k.split(".")[0]) for k in sd)
    out = {}
    for k, v in sd.items():
        i, rest = k.split(".", 1)
        i = int(i)
        if i in (0, 2):
            out[f"stem.{i}.{rest}"] = v
        elif i in blocks:
            out[f"blocks.{i - blocks[0]}.{rest}"] = v
        elif i == head:
            out[f"head.{rest}"] = v
        else:
            out[k] = v
    return out


@register_converter("timm/locuslab ConvMixer", priority=60)
def timm_convmixer(container: dict, sd: dict, overrides: dict) -> Detected | None:
    """``act`` is not stored: ReLU for the published ReLU configs (768/32), else GELU, unless ``act=`` is given."""
    if "stem.0.weight" not in sd or "blocks.0.0.fn.0.weight" not in sd:
        sd = _locuslab_to_timm(sd)
        if sd is None:
            return None
    w, dw = sd["stem.0.weight"], sd["blocks.0.0.fn.0.weight"]
    dim, p, k = w.shape[0], w.shape[-1], dw.shape[-1]
    depth = 1 + max(int(m.group(1)) for key in sd if (m := re.match(r"^blocks\.(\d+)\.", key)))
    cfg = dict(patch_size=p, in_chans=w.shape[1], dim=dim, depth=depth, kernel_size=k,
               act="relu" if (dim, depth, k, p) in RELU_CONFIGS else "gelu",
               num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0)
    conv, unknown = rename_keys(sd, _RULES)
    for key in [key for key in conv if key.endswith("ffn.pw.weight")]:
        conv[key] = conv[key].flatten(1)  # Conv2d 1x1 (C, C, 1, 1) -> Linear (C, C)
    return Detected("timm-convmixer", "convmixer", cfg, conv, unknown=unknown)
