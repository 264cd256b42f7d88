"""MViTv2's decomposed relative positions in attention, three ways, at the shapes of MViTv2-S 16 x 224:

- ``columns`` (ours, ``PoolingAttention._attend_rel``): the bias is bilinear in q, so it enters SDPA as extra
  q columns (``q . R_a``) against one-hot k columns; the ``(Nq, Nk)`` bias is never built;
- ``attn_mask``: the bias built by torchvision's ``_add_rel_pos`` and given to SDPA as an additive float mask;
- ``matmul``: torchvision's own path (``(scale q) k^T``, ``_add_rel_pos`` in place, softmax, ``@ v``).

For each stage's attention shape (batch 1): the three outputs agree, then forward (inference mode) and forward +
backward (gradients for q, k, v and the tables) are timed (median of ``--iters``, 2 threads) and the peak RSS
growth is taken per mode as in ``models.py``. Usage::

    python benchmarks/relpos_attention.py [--iters 5] [--out benchmarks/results/relpos_attention_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.models.video.mvit import _add_rel_pos

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from models import PeakMemory, machine_info  # noqa: E402

from spatiotemporal.layers import PoolingAttention, video_layout  # noqa: E402

# (name, heads, q grid, k grid, input grid, q stride, kv stride) of MViTv2-S 16x224 (head width 96)
SHAPES = [
    ("stage0", 1, (8, 56, 56), (8, 7, 7), (8, 56, 56), (1, 1, 1), (1, 8, 8)),
    ("stage1_first", 2, (8, 28, 28), (8, 14, 14), (8, 56, 56), (1, 2, 2), (1, 4, 4)),
    ("stage2", 4, (8, 14, 14), (8, 7, 7), (8, 14, 14), (1, 1, 1), (1, 2, 2)),
    ("stage3", 8, (8, 7, 7), (8, 7, 7), (8, 7, 7), (1, 1, 1), (1, 1, 1)),
]
D = 96


def run_shape(name, heads, qg, kg, grid, sq, skv, iters: int) -> dict:
    mix = PoolingAttention(heads * D, num_heads=heads, layout=video_layout(*grid), stride_q=sq, stride_kv=skv)
    tables = (mix.rel_pos_h, mix.rel_pos_w, mix.rel_pos_t)
    g = torch.Generator().manual_seed(0)
    nq, nk = 1 + qg[0] * qg[1] * qg[2], 1 + kg[0] * kg[1] * kg[2]
    q, k, v = (torch.randn(1, heads, n, D, generator=g) for n in (nq, nk, nk))
    scale = D**-0.5

    def columns(q, k, v):
        return mix._attend_rel(q, k, v, qg, kg, 1)

    def attn_mask(q, k, v):
        bias = _add_rel_pos(q.new_zeros(1, heads, nq, nk), q, qg, kg, *tables)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)

    def matmul(q, k, v):
        attn = torch.matmul(scale * q, k.transpose(2, 3))
        return _add_rel_pos(attn, q, qg, kg, *tables).softmax(dim=-1) @ v

    impls = {"columns": columns, "attn_mask": attn_mask, "matmul": matmul}
    with torch.no_grad():
        ref = matmul(q, k, v)
        diffs = {n: float((f(q, k, v) - ref).abs().max()) for n, f in impls.items()}
    out = {"shape": name, "heads": heads, "q_tokens": nq, "k_tokens": nk, "max_abs_diff_vs_matmul": diffs}
    mem = PeakMemory("cpu")
    for n, f in impls.items():
        def fwd(f=f):
            with torch.inference_mode():
                f(q, k, v)

        def train(f=f):
            qq, kk, vv = (t.clone().requires_grad_() for t in (q, k, v))
            f(qq, kk, vv).sum().backward()

        for mode, step in (("fwd", fwd), ("train", train)):
            step()  # warm-up
            mem.reset()
            times = []
            for _ in range(iters):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
            out[f"{n}_{mode}_s"] = statistics.median(times)
            out[f"{n}_{mode}_peak_plus_mib"] = round(mem.peak_plus(), 1)
            mix.zero_grad(set_to_none=True)
    return out


def markdown(result: dict) -> str:
    lines = ["# Relative-position attention: q/k columns (ours) vs attn_mask vs matmuls (torchvision)", "",
             f"{result['machine']['date']}, {result['machine']['cpu']}, 2 threads, batch 1, head width {D}, "
             f"median of {result['iters']} iterations; peak+ = peak RSS growth (MiB).", "",
             "| shape (heads, q x k tokens) | mode | columns s | attn_mask s | matmul s | columns / matmul | "
             "peak+ columns / attn_mask / matmul | max diff vs matmul |", "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        diff = max(r["max_abs_diff_vs_matmul"].values())
        for mode in ("fwd", "train"):
            c, a, m = (r[f"{n}_{mode}_s"] for n in ("columns", "attn_mask", "matmul"))
            peaks = " / ".join(f"{r[f'{n}_{mode}_peak_plus_mib']:.0f}" for n in ("columns", "attn_mask", "matmul"))
            lines.append(f"| {r['shape']} ({r['heads']}, {r['q_tokens']} x {r['k_tokens']}) | {mode} | {c:.3f} | "
                         f"{a:.3f} | {m:.3f} | **{c / m:.2f}** | {peaks} | {diff:.1e} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--out", default=str(HERE / "results" / "relpos_attention_cpu.json"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    rows = [run_shape(*s, iters=args.iters) for s in SHAPES]
    result = {"machine": machine_info(None), "iters": args.iters, "rows": rows}
    out = Path(args.out)
    out.write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
