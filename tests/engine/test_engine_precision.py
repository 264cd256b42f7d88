"""``amp=auto`` follows the CPU's native bf16 (detection mocked both ways), and the detection itself."""

from __future__ import annotations

import pytest
import torch

from spatiotemporal.engine import precision
from spatiotemporal.engine.precision import amp_dtype, cpu_native_bf16

CPU = torch.device("cpu")


@pytest.fixture
def fresh_detection():
    cpu_native_bf16.cache_clear()
    yield
    cpu_native_bf16.cache_clear()


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_exactly_when_the_cpu_has_native_bf16(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_native_bf16", lambda: native)
    assert amp_dtype("auto", CPU) == (torch.bfloat16 if native else None)
    assert amp_dtype("none", CPU) is None  # explicit choices ignore the detection
    assert amp_dtype("bf16", CPU) == torch.bfloat16


@pytest.mark.parametrize(("avx512_bf16", "amx", "onednn", "expected"), [
    (True, False, True, True), (False, True, True, True), (False, False, True, False), (True, False, False, False),
])
def test_detection_needs_the_hardware_and_onednn(monkeypatch, fresh_detection, avx512_bf16, amx, onednn, expected):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn)
    assert cpu_native_bf16() is expected
    assert amp_dtype("auto", CPU) == (torch.bfloat16 if expected else None)


@pytest.mark.parametrize(("flags", "expected"), [({"avx2", "avx512f", "avx512_bf16"}, True),
                                                 ({"avx2", "amx_bf16", "amx_tile"}, True), ({"avx2", "fma"}, False)])
def test_detection_falls_back_to_cpuinfo_flags(monkeypatch, fresh_detection, flags, expected):
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.setattr(precision, "_cpuinfo_flags", lambda: flags)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert cpu_native_bf16() is expected


def test_detection_agrees_with_this_machines_cpuinfo(fresh_detection):
    flags = precision._cpuinfo_flags()  # Linux: the machine's own flags
    assert flags
    hardware = bool(flags & {"avx512_bf16", "amx_bf16"})
    assert cpu_native_bf16() == (hardware and torch.ops.mkldnn._is_mkldnn_bf16_supported())
