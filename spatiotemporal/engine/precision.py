"""Mixed precision: autocast dtype for ``amp`` = none | bf16 | fp16 | auto, and the fp16 GradScaler."""

from __future__ import annotations

import contextlib
import functools

import torch

from ..utils.config import ConfigError

__all__ = ["amp_dtype", "autocast", "cpu_native_bf16", "make_grad_scaler"]

_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpuinfo_flags() -> set[str]:
    """The ``flags`` of ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((set(ln.split(":", 1)[1].split()) for ln in f if ln.startswith("flags")), set())
    except OSError:
        return set()


@functools.cache
def cpu_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX) and oneDNN will use it.

    Asks torch's cpuinfo (``torch.cpu._is_avx512_bf16_supported`` / ``_is_amx_tile_supported``), else the
    ``/proc/cpuinfo`` flags; oneDNN must also accept bf16 (``torch.ops.mkldnn._is_mkldnn_bf16_supported``).
    Without native bf16 (e.g. AVX2 only) bf16 is emulated and slower than fp32, so ``auto`` keeps fp32 there.
    """
    probes = [getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(p is not None for p in probes):
        hardware = any(p() for p in probes)
    else:
        hardware = bool(_cpuinfo_flags() & set(_BF16_FLAGS))
    return hardware and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """``auto``: bf16 on CUDA devices that support it (fp16 on older ones) and on CPUs with native bf16
    (:func:`cpu_native_bf16`); none on other CPUs."""
    if mode == "none":
        return None
    if mode == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_native_bf16() else None
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        if device.type != "cuda":
            raise ConfigError("train.amp=fp16 needs a CUDA device; use amp=bf16 or amp=none on CPU")
        return torch.float16
    raise ConfigError(f"train.amp '{mode}': expected none, bf16, fp16 or auto")


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` context, or a null context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """Enabled only for fp16 (bf16 has fp32's range and needs no loss scaling)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
