"""oneDNN bf16 convolution weight grads on grids smaller than the kernel, raw torch against ``conv_nd``'s guard.

Found through ``spatio train segformer3d`` (the test's tiny MiT at a 48^3 ROI) stopping at step 1 with a non-finite
AdamW ``exp_avg_sq`` in ``encoder.stages.3.blocks.0.ffn.dwconv.weight``: that Mix-FFN's depthwise Conv3d runs on a
2x2x2 grid. Under CPU bf16 autocast, oneDNN's bf16 backward-weights kernel (``jit_bf16:avx512_core_bf16``) gives
weight grads that are wrong on every run and change from run to run: they read stale heap memory, so what earlier
code left there (here: bf16 1e30 fill, as a previous test might) comes back as grads up to ~1e37, whose square
overflows fp32 in AdamW. With a larger kernel the same kernel crashes (ConvMixer's 9x9x9 on a depth-5 grid).

Each case runs ``--iters`` forward+backward passes under ``torch.autocast("cpu", bfloat16)``, one thread, with the
heap filled with 1e30 before each, and counts: grads off the fp32 reference by > 5% of its max, non-finite grads,
the largest |grad| and the distinct results. Crash probes run in a child process. Usage (about 30 s)::

    python benchmarks/bf16_conv_check.py [--iters 200] [--out benchmarks/results/bf16_conv_check.md]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from spatiotemporal.layers.conv_grid import conv_nd

# name, (batch, channels, grid), groups, kernel, channels_last (as tokens_to_map's view of grid tokens)
CASES = [
    ("SegFormer3D stage-4 dwconv, 2x2x2", (2, 128, (2, 2, 2)), 128, 3, True),
    ("SegFormer3D stage-3 dwconv, 3x3x3 (control)", (2, 96, (3, 3, 3)), 96, 3, True),
    ("depthwise, grid 2x5x5", (2, 64, (2, 5, 5)), 64, 3, True),
    ("depthwise channels-first, 2x5x5 (control)", (2, 64, (2, 5, 5)), 64, 3, False),
    ("dense Conv3d channels-first, 2x4x4", (2, 32, (2, 4, 4)), 1, 3, False),
]
CRASH = ("ConvMixer 3D k=9 dwconv on a 5x4x3 grid", (2, 32, (5, 4, 3)), 32, 9, True)


def poison_heap() -> None:
    """Leave freed blocks full of bf16/fp32 1e30 behind, as earlier code may."""
    for n in (1 << 10, 1 << 12, 1 << 14, 1 << 16):
        a, b = torch.full((n,), 1e30, dtype=torch.bfloat16), torch.full((n,), 1e30)
        del a, b


def make_case(shape, groups: int, k: int, channels_last: bool, seed: int = 0):
    b, c, grid = shape
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, *grid, c, generator=g).movedim(-1, 1)
    x = x if channels_last else x.contiguous()
    conv = conv_nd(3)(c, c, k, padding=k // 2, groups=groups, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.2)
    return conv, x.bfloat16().float(), torch.randn(b, c, *grid, generator=g)


def weight_grad(conv, x, grad_out, guarded: bool, amp: bool) -> torch.Tensor:
    conv.weight.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        y = conv(x) if guarded else F.conv3d(x, conv.weight, None, 1, conv.padding, 1, conv.groups)
    y.backward(grad_out.to(y.dtype))
    return conv.weight.grad.float().clone()


def run_case(shape, groups, k, channels_last, iters: int, guarded: bool) -> dict:
    conv, x, go = make_case(shape, groups, k, channels_last)
    ref = weight_grad(conv, x, go, guarded=False, amp=False)
    wrong = nonfinite = 0
    biggest, seen = 0.0, set()
    for _ in range(iters):
        poison_heap()
        g = weight_grad(conv, x, go, guarded, amp=True)
        finite = torch.isfinite(g).all().item()
        nonfinite += not finite
        wrong += (not finite) or (g - ref).abs().max().item() > 0.05 * ref.abs().max().item()
        biggest = max(biggest, g[torch.isfinite(g)].abs().max().item())
        seen.add(hash(g.numpy().tobytes()))
    return {"wrong": wrong, "nonfinite": nonfinite, "max_abs": biggest, "distinct": len(seen),
            "ref_max_abs": ref.abs().max().item()}


def crash_probe(guarded: bool) -> int:
    """Return code of a child process that runs the crash case once (0: finished; <0: killed by that signal)."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import torch; torch.set_num_threads(1); "
            f"import bf16_conv_check as b; _, shape, gr, k, cl = b.CRASH; "
            f"[b.run_case(shape, gr, k, cl, 1, {guarded}) for _ in range(3)]")
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--out", default="benchmarks/results/bf16_conv_check.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    onednn = next((w for w in torch.__config__.show().split() if w.startswith("v") and w[1:2].isdigit()), "?")
    lines = [f"# bf16 conv weight grads on small grids ({args.iters} runs each, heap filled with 1e30 before each)",
             "", f"torch {torch.__version__}, {platform.processor() or platform.machine()}, avx512_bf16: {native}, "
             f"oneDNN {onednn}",
             "", "| case | path | wrong | non-finite | max abs grad (fp32 ref) | distinct results |",
             "|---|---|---|---|---|---|"]
    for name, shape, groups, k, cl in CASES:
        for guarded in (False, True):
            r = run_case(shape, groups, k, cl, args.iters, guarded)
            lines.append(f"| {name} | {'conv_nd (guarded)' if guarded else 'torch bf16'} | {r['wrong']} | "
                         f"{r['nonfinite']} | {r['max_abs']:.3g} ({r['ref_max_abs']:.3g}) | {r['distinct']} |")
            print(lines[-1], flush=True)
    for guarded in (False, True):
        rc = crash_probe(guarded)
        lines.append(f"\n{CRASH[0]}, {'conv_nd (guarded)' if guarded else 'torch bf16'}: child exit code {rc}"
                     + (" (crashed)" if rc < 0 else ""))
        print(lines[-1].strip(), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
