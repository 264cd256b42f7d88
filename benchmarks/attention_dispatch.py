"""Micro-benchmark behind ``spatiotemporal.layers.sdpa.attend``'s CPU exception: SDPA vs two matmuls.

``sdpa`` = ``F.scaled_dot_product_attention`` (on CPU: ``_scaled_dot_product_flash_attention_for_cpu``);
``matmul`` = ``softmax((q * scale) @ k^T) @ v``, the path ``attend`` takes on CPU for inference on
sequences <= ``CPU_SHORT_SEQ``. q, k, v are the strided views a transformer block produces
(``qkv(x).reshape(B, N, 3, H, d).permute(2, 0, 3, 1, 4)``). ``fwd`` runs under ``no_grad``;
``fwd+bwd`` backpropagates a random gradient into ``qkv``. The two methods alternate call by call;
``--passes`` passes over all cells spread each cell's calls over time; ms per call = 20th percentile
(and median, min) of all calls; the verdict per cell uses the 20th percentile, which a shared machine
disturbs far less than the median. Shapes: the TimeSformer ViT-S shapes at 224 px (B = 1) and at the 8 x 112
benchmark config (B = 2), and a sweep over the sequence length N at a fixed 1568 tokens.

``--dtype bf16`` runs both methods as a bf16-autocast model does (bf16 q, k, v under ``torch.autocast``) and
judges ``CPU_SHORT_SEQ_BF16``.

Usage::

    python benchmarks/attention_dispatch.py [--threads 2] [--budget 1.5] [--passes 3] [--dtype fp32|bf16]
        [--sweep 4,8,...] [--out benchmarks/results/attention_dispatch_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# Under contention, OpenMP's default spin-waiting turns every parallel region into a wait for the
# descheduled sibling thread (measured here: 50-80 ms per call for 1-3 ms of work). Passive waiting
# measures the kernels instead; set OMP_WAIT_POLICY yourself to override (it must precede torch).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from models import Contention, machine_info  # noqa: E402

from spatiotemporal.layers import sdpa as dispatch  # noqa: E402

HEADS, HEAD_DIM = 6, 64  # ViT-S

NAMED = [  # (name, batch of sequences, N)
    ("temporal 224px (196*B, h, 8, 64)", 196, 8),
    ("spatial 224px (8*B, h, 197, 64)", 8, 197),
    ("joint 224px (B, h, 1569, 64)", 1, 1569),
    ("temporal 8x112 b2 (98, h, 8, 64)", 98, 8),
    ("spatial 8x112 b2 (16, h, 50, 64)", 16, 50),
    ("joint 8x112 b2 (2, h, 393, 64)", 2, 393),
]
SWEEP_N = [4, 8, 12, 16, 24, 32, 48, 64, 96, 128]
SWEEP_TOKENS = 1568
DTYPE = torch.float32  # --dtype


def threshold() -> int:
    return dispatch.CPU_SHORT_SEQ_BF16 if DTYPE == torch.bfloat16 else dispatch.CPU_SHORT_SEQ


def sdpa(q, k, v):
    return F.scaled_dot_product_attention(q, k, v)


def matmul(q, k, v):
    attn = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    return attn.softmax(dim=-1) @ v


METHODS = {"sdpa": sdpa, "matmul": matmul}


def make_inputs(b: int, n: int, grad: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    qkv = torch.randn(b, n, 3, HEADS, HEAD_DIM, generator=g).to(DTYPE).requires_grad_(grad)
    return qkv


def call(method, qkv: torch.Tensor, mode: str, grad_out: torch.Tensor | None) -> None:
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=DTYPE == torch.bfloat16):
        if mode == "fwd":
            with torch.no_grad():
                method(q, k, v)
            return
        qkv.grad = None
        out = method(q, k, v)
    out.backward(grad_out)


def sample_shape(b: int, n: int, mode: str, budget: float, min_reps: int) -> tuple[dict, dict]:
    """Wall and process-CPU seconds per call of each method, alternating, for ``budget`` s per method."""
    qkv = make_inputs(b, n, mode != "fwd")
    grad_out = torch.randn(b, HEADS, n, HEAD_DIM).to(DTYPE) if mode != "fwd" else None
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    cpu: dict[str, list[float]] = {m: [] for m in METHODS}
    for fn in METHODS.values():  # warm-up
        call(fn, qkv, mode, grad_out)
    spent = 0.0
    while spent < 2 * budget or min(len(t) for t in times.values()) < min_reps:
        for name, fn in METHODS.items():
            c0, t0 = time.process_time(), time.perf_counter()
            call(fn, qkv, mode, grad_out)
            w = time.perf_counter() - t0
            cpu[name].append(time.process_time() - c0)
            times[name].append(w)
            spent += w
    return times, cpu


def _pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def summarize_cell(b: int, n: int, mode: str, times: dict, cpu: dict, others: list[float]) -> dict:
    """Wall median, 20th percentile and min, CPU median per method; the verdict uses the wall p20."""
    stat = {
        k: {m: round(1e3 * f(t), 3) for m, t in times.items()}
        for k, f in (("median", statistics.median), ("p20", lambda t: _pct(t, 0.2)), ("min", min))
    }
    stat["cpu_median"] = {m: round(1e3 * statistics.median(t), 3) for m, t in cpu.items()}
    qkv = make_inputs(b, n, False)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    diff = float((sdpa(q, k, v).float() - matmul(q, k, v).float()).abs().max())
    return dict(
        shape=[b, HEADS, n, HEAD_DIM],
        mode=mode,
        ms=stat,
        reps=len(times["sdpa"]),
        ratio={k: round(v["matmul"] / v["sdpa"], 3) for k, v in stat.items()},
        faster="matmul" if stat["p20"]["matmul"] < stat["p20"]["sdpa"] else "sdpa",
        max_abs_diff=diff,
        other_cores=round(statistics.median(others), 2) if others else None,
    )


TIE = 0.1  # |ratio - 1| below this is a tie


def conclude(sweep: list[dict]) -> dict:
    """Per mode: the swept N where matmul wins, ties or loses (wall p20), and a verdict on the threshold."""
    limit = threshold()
    out: dict = {"current_threshold": limit}
    for mode in ("fwd", "fwd+bwd"):
        rows = sorted((r for r in sweep if r["mode"] == mode), key=lambda r: r["shape"][2])
        k = {"matmul": [], "tie": [], "sdpa": []}
        up_to, broken = 0, False
        for r in rows:
            ratio, n = r["ratio"]["p20"], r["shape"][2]
            side = "matmul" if ratio < 1 - TIE else "sdpa" if ratio > 1 + TIE else "tie"
            k[side].append(n)
            broken = broken or side == "sdpa"
            up_to = up_to if broken else n
        k["matmul_or_tie_up_to"] = up_to
        out[mode] = k
    fwd = out["fwd"]
    if not fwd["matmul"] or min(fwd["matmul"]) > limit:
        out["verdict"] = "matmul does not win for short sequences in inference: drop the exception"
    elif fwd["matmul_or_tie_up_to"] < limit:
        out["verdict"] = f"matmul loses from N > {fwd['matmul_or_tie_up_to']}: lower the threshold to that"
    else:
        out["verdict"] = (
            f"justified in inference: matmul wins or ties for every N <= {fwd['matmul_or_tie_up_to']}"
        )
    train = out["fwd+bwd"]
    if train["matmul_or_tie_up_to"] >= limit and any(n <= limit for n in train["matmul"]):
        out["verdict"] += (
            f"; in training matmul also wins or ties for N <= {train['matmul_or_tie_up_to']}, so the "
            "exception could apply with gradients too"
        )
    return out


def markdown(res: dict) -> str:
    lines = [
        "# Attention dispatch on CPU: SDPA vs two matmuls",
        "",
        f"{res['machine']['date']} on {res['machine']['cpu']}, torch {res['machine']['torch']}, "
        f"{res['threads']} threads, {res.get('dtype', 'fp32')}, heads {HEADS}, head_dim {HEAD_DIM}; "
        f"q/k/v = strided views of a qkv projection; OMP_WAIT_POLICY={res['omp_wait_policy']}. "
        f"The two methods alternate call by call, {res['passes']} passes over all cells; "
        "wall ms per call as 20th percentile (median, min), CPU = median process CPU ms (both threads); "
        "ratio = matmul / sdpa (< 1: matmul faster); "
        "the verdict uses the 20th percentile (the shared VM disturbs most calls).",
        "",
        "| shape (B*, h, N, d) | mode | sdpa wall ms p20 (med, min) | sdpa CPU ms | matmul wall ms p20 "
        "(med, min) | matmul CPU ms | ratio p20 | ratio med | ratio CPU | faster | calls | other cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["named"] + res["sweep"]:
        ms = r["ms"]
        cell = {
            m: f"{ms['p20'][m]:.2f} ({ms['median'][m]:.2f}, {ms['min'][m]:.2f}) | {ms['cpu_median'][m]:.2f}"
            for m in METHODS
        }
        lines.append(
            f"| {r['label']} | {r['mode']} | {cell['sdpa']} | {cell['matmul']} | "
            f"**{r['ratio']['p20']:.2f}** | {r['ratio']['median']:.2f} | {r['ratio']['cpu_median']:.2f} "
            f"| {r['faster']} | {r['reps']} "
            f"| {r['other_cores']} |"
        )
    c = res["conclusion"]
    lines += ["", "## Conclusion", ""]
    for mode, name in (("fwd", "Inference (no grad)"), ("fwd+bwd", "Training (fwd+bwd)")):
        k = c[mode]
        lines.append(
            f"- {name}, sweep at {SWEEP_TOKENS} tokens: matmul faster (ratio < {1 - TIE:.2f}) for N in "
            f"{k['matmul']}, tie for N in {k['tie']}, SDPA faster (> {1 + TIE:.2f}) for N in {k['sdpa']}; "
            f"matmul wins or ties for every N <= {k['matmul_or_tie_up_to']}."
        )
    name = "CPU_SHORT_SEQ_BF16" if res.get("dtype") == "bf16" else "CPU_SHORT_SEQ"
    lines.append(f"- `{name}` = {c['current_threshold']}: {c['verdict']}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--budget", type=float, default=1.5, help="seconds of calls per method and cell, all passes"
    )
    ap.add_argument("--passes", type=int, default=3, help="passes over all cells (spreads samples over time)")
    ap.add_argument("--min-reps", type=int, default=3, help="calls per method, cell and pass, at least")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--sweep", default=",".join(map(str, SWEEP_N)), help="sequence lengths of the sweep")
    ap.add_argument("--out", default=str(HERE / "results" / "attention_dispatch_cpu.json"))
    ap.add_argument("--render", metavar="JSON", help="only recompute the conclusion and Markdown of a result")
    args = ap.parse_args(argv)
    global DTYPE
    if args.render:
        path = Path(args.render)
        res = json.loads(path.read_text())
        DTYPE = torch.bfloat16 if res.get("dtype") == "bf16" else torch.float32
        res["conclusion"] = conclude(res["sweep"])
        path.write_text(json.dumps(res, indent=1))
        path.with_suffix(".md").write_text(markdown(res))
        print(markdown(res))
        return
    torch.set_num_threads(args.threads)
    DTYPE = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    sweep_n = [int(n) for n in args.sweep.split(",")]
    t_start = time.time()

    cells = [(label, b, n, mode) for label, b, n in NAMED for mode in ("fwd", "fwd+bwd")]
    cells += [
        (f"sweep ({SWEEP_TOKENS // n}, h, {n}, 64)", SWEEP_TOKENS // n, n, mode)
        for n in sweep_n
        for mode in ("fwd", "fwd+bwd")
    ]
    samples = {c: {m: [] for m in METHODS} for c in cells}
    cpu_samples = {c: {m: [] for m in METHODS} for c in cells}
    others = {c: [] for c in cells}
    cont = Contention()
    for p in range(args.passes):
        for c in cells:
            _, b, n, mode = c
            cont.start()
            t0 = time.perf_counter()
            times, cpu = sample_shape(b, n, mode, args.budget / args.passes, args.min_reps)
            o, _ = cont.stop(time.perf_counter() - t0)
            if o is not None:
                others[c].append(o)
            for m in METHODS:
                samples[c][m] += times[m]
                cpu_samples[c][m] += cpu[m]
        print(
            f"[{time.time() - t_start:5.0f} s] pass {p + 1}/{args.passes} done", file=sys.stderr, flush=True
        )
    rows = [
        dict(label=c[0], **summarize_cell(c[1], c[2], c[3], samples[c], cpu_samples[c], others[c]))
        for c in cells
    ]
    named, sweep = rows[: 2 * len(NAMED)], rows[2 * len(NAMED) :]

    res = dict(
        machine=machine_info(None),
        threads=args.threads,
        dtype=args.dtype,
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
        heads=HEADS,
        head_dim=HEAD_DIM,
        budget_s=args.budget,
        passes=args.passes,
        total_s=round(time.time() - t_start, 1),
        named=named,
        sweep=sweep,
        conclusion=conclude(sweep),
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
