"""Mixed precision: autocast dtype for ``amp`` = none | bf16 | fp16 | auto, and the fp16 GradScaler."""

from __future__ import annotations

import contextlib

import torch

from .config import ConfigError

__all__ = ["amp_dtype", "autocast", "make_grad_scaler"]


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """``auto``: bf16 on CUDA devices that support it, fp16 on older CUDA, none on CPU."""
    if mode == "none":
        return None
    if mode == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
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
