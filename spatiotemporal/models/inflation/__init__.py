"""All of inflation, 2D weights initialising video and volume models.

- :mod:`.stem`: :class:`~.stem.Stem2d`, what a single-stage 2D model hands over (its ``inflation_source()`` hook),
  and the kernel helpers the targets' ``adopt_stem()`` hooks use;
- :mod:`.generic`: the one rule of every single-stage pair (ViT, MLP-Mixer, ConvMixer, XCiT -> TimeSformer,
  VideoMAE, UNETR);
- :mod:`.rules`: the pair-rule registry (``@register_inflation``), the WARNING line, ``init_from_checkpoint``;
- :mod:`.mvit`, :mod:`.segformer`: the pair rules of the multi-stage trunks (imported by ``spatiotemporal.models``).
"""

from .rules import INFLATIONS, inflate, init_from_checkpoint, register_inflation
from .stem import Stem2d, inflate_patch_kernel

__all__ = ["INFLATIONS", "Stem2d", "inflate", "inflate_patch_kernel", "init_from_checkpoint", "register_inflation"]
