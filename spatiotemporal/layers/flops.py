"""FLOP counting with ``torch.utils.flop_counter``, including SDPA's CPU kernel.

PyTorch registers FLOP formulas for the CUDA attention kernels only; on CPU,
``scaled_dot_product_attention`` dispatches to ``_scaled_dot_product_flash_attention_for_cpu``,
which would count as zero. We register the same formulas for it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils import flop_counter as fc

_registered = False


def _register_cpu_sdpa() -> None:
    global _registered
    if _registered:
        return
    aten = torch.ops.aten

    @fc.register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu, get_raw=True)
    def _fwd(query, key, value, *args, out_val=None, **kwargs) -> int:
        return fc.sdpa_flop_count(query.shape, key.shape, value.shape)

    @fc.register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu_backward, get_raw=True)
    def _bwd(grad_out, query, key, value, *args, out_val=None, **kwargs) -> int:
        return fc.sdpa_backward_flop_count(grad_out.shape, query.shape, key.shape, value.shape)

    _registered = True


def count_flops(fn: Callable[[], object]) -> int:
    """Total FLOPs (a multiply-add counts 2) of running ``fn()``; matmuls, convolutions and attention."""
    _register_cpu_sdpa()
    with fc.FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()
