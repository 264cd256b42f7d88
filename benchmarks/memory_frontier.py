"""Memory / time frontier of training: our activation-checkpointing policies against the peers, in one run.

For each config (TimeSformer-S 8x112 divided / joint / space-only vs the official code, UNETR 96^3 vs MONAI;
``models.py``'s configs, same protocol: one fresh process per cell, ``--rounds`` interleaved rounds, contention
recorded) and each precision (fp32, and the bf16 autocast ``amp=auto`` picks on a CPU with native bf16):

- the peer, as it ships;
- ours with ``recompute`` = none | pointwise | projections | full (``spatiotemporal.layers.recompute``);
- ours with every attention through SDPA (``CPU_SHORT_SEQ = 0``: the 8-frame temporal attention no longer
  materialises its 8 x 8 maps), for divided attention only, where that path is taken.

Reported per cell: train-step wall time (median over the timed iterations of all rounds), its ratio to ours
without recomputation and to the peer, and two peaks: **tensor peak+** (live tensors, torch's ``MemTracker``:
gradients, optimiser state, activations, temporaries; exact) and **RSS peak+** (the resident set, as
``models.py``; includes glibc's retained memory). Ratios ``ours / peer`` < 1: ours smaller or faster.

Usage::

    python benchmarks/memory_frontier.py --timesformer-src /work/peers/TimeSformer [--rounds 2] [--iters 3]
        [--only timesformer_s_8x112_divided,unetr_96] [--precisions fp32,bf16]
    python benchmarks/memory_frontier.py --render benchmarks/results/memory_frontier.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from models import CONFIG_BY_NAME, _f, _median, machine_info, run_isolated  # noqa: E402

DEFAULT_CONFIGS = ("timesformer_s_8x112_divided", "timesformer_s_8x112_joint", "timesformer_s_8x112_space_only",
                   "unetr_96")
POLICIES = ("none", "pointwise", "projections", "full")


def variants(config: str) -> list[dict]:
    """The cells of one config and precision: label, impl and the spec keys that make them."""
    out = [dict(label="peer", impl="peer")]
    # UNETR: its encoder (216 tokens) keeps little; "projections" acts like "pointwise" on the conv decoder
    policies = [p for p in POLICIES if p != "projections"] if config.startswith("unetr") else POLICIES
    out += [dict(label=f"ours {p}", impl="ours", options={"recompute": p}) for p in policies]
    if config.endswith("_divided"):
        out.append(dict(label="ours none, SDPA everywhere", impl="ours", options={"recompute": "none"},
                        cpu_short_seq=0))
    return out


def summarize(runs: list[dict]) -> list[dict]:
    rows = []
    for cfg in dict.fromkeys(r["config"] for r in runs):
        for prec in dict.fromkeys(r["precision"] for r in runs if r["config"] == cfg):
            cell = [r for r in runs if r["config"] == cfg and r["precision"] == prec and "error" not in r]
            stats = {}
            for label in dict.fromkeys(r["label"] for r in cell):
                rs = [r for r in cell if r["label"] == label]
                tp = [r["tensor_peak_mib"] for r in rs if "tensor_peak_mib" in r]
                stats[label] = dict(
                    wall_s=_median([w for r in rs for w in r["wall_s"]]),
                    cpu_s=_median([c for r in rs for c in r["cpu_s"]]),
                    rss_peak_plus=_median([r["peak_plus_mib"] for r in rs]),
                    tensor_peak_plus=tp[0]["peak_plus"] if tp else None,
                    activations=tp[0].get("Activation") if tp else None,
                    other_cores=_median([o for r in rs for o in r["other_cores"]]),
                    n_timed=sum(len(r["wall_s"]) for r in rs),
                )
            peer, base = stats.get("peer", {}), stats.get("ours none", {})
            def ratio(st, key, ref):
                return round(st[key] / ref[key], 3) if st.get(key) and ref.get(key) else None

            for label, st in stats.items():

                rows.append(dict(config=cfg, precision=prec, label=label, **st,
                                 time_vs_ours_none=ratio(st, "wall_s", base), time_vs_peer=ratio(st, "wall_s", peer),
                                 cpu_vs_ours_none=ratio(st, "cpu_s", base),
                                 tensor_vs_peer=ratio(st, "tensor_peak_plus", peer),
                                 rss_vs_peer=ratio(st, "rss_peak_plus", peer)))
    return rows


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Training memory / time frontier: activation checkpointing policies vs the peers",
        "",
        *([] if result.get("complete", True) else ["**Partial results: the run was interrupted.**", ""]),
        f"{m['date']} on {m['cpu']} ({m['cpus']} CPUs), {result['threads']} threads, "
        f"OMP_WAIT_POLICY={result.get('omp_wait_policy') or 'unset'}, torch {m['torch']}; {result['rounds']} "
        f"interleaved rounds x {result['iters']} timed train steps per cell (fresh process each), under "
        f"`flock /tmp/spatio-cpu.lock`. Train step = forward, cross-entropy, backward, AdamW step.",
        "",
        "tensor peak+ = peak of live tensors minus parameters (gradients, AdamW moments, activations, "
        "temporaries; torch's MemTracker, exact); RSS peak+ = growth of the resident set (includes glibc's "
        "retained memory). time / none = wall ratio to ours without recomputation (CPU-time ratio in brackets).",
        "",
        "| config | precision | cell | train step s | time / none | time / peer | tensor peak+ MiB | "
        "activations MiB | tensor / peer | RSS peak+ MiB | RSS / peer | other cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['config']} | {r['precision']} | {r['label']} | {_f(r['wall_s'], '{:.3f}')} | "
            f"{_f(r['time_vs_ours_none'])} ({_f(r['cpu_vs_ours_none'])}) | {_f(r['time_vs_peer'])} | "
            f"{_f(r['tensor_peak_plus'], '{:.0f}')} | {_f(r['activations'], '{:.0f}')} | "
            f"**{_f(r['tensor_vs_peer'])}** | {_f(r['rss_peak_plus'], '{:.0f}')} | {_f(r['rss_vs_peer'])} | "
            f"{_f(r['other_cores'])} |"
        )
    lines += ["", "## On the frontier (tensor peak+ <= 0.8x the peer's at <= 10% more time than ours without "
              "recomputation)", ""]
    for cfg in dict.fromkeys(r["config"] for r in result["rows"]):
        for prec in dict.fromkeys(r["precision"] for r in result["rows"] if r["config"] == cfg):
            ok = [r for r in result["rows"] if r["config"] == cfg and r["precision"] == prec
                  and r["label"].startswith("ours") and r["tensor_vs_peer"] is not None
                  and r["time_vs_ours_none"] is not None and r["tensor_vs_peer"] <= 0.8
                  and r["time_vs_ours_none"] <= 1.10]
            best = min(ok, key=lambda r: r["wall_s"]) if ok else None
            lines.append(f"- {cfg} {prec}: " + (
                f"**{best['label']}** (tensor {_f(best['tensor_vs_peer'])}x the peer's, time "
                f"{_f(best['time_vs_ours_none'])}x ours without recomputation)" if best else "no policy meets both"))
    return "\n".join(lines) + "\n"


def write(args, machine: dict, runs: list[dict], t0: float, complete: bool) -> None:
    result = dict(complete=complete, machine=machine, threads=args.threads, rounds=args.rounds, iters=args.iters,
                  omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"), total_s=round(time.time() - t0, 1),
                  rows=summarize(runs), runs=runs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(markdown(result))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timesformer-src", default=None)
    ap.add_argument("--only", default=",".join(DEFAULT_CONFIGS))
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--render", metavar="JSON")
    ap.add_argument("--out", default=str(HERE / "results" / "memory_frontier.json"))
    args = ap.parse_args(argv)
    if args.render:
        path = Path(args.render)
        result = json.loads(path.read_text())
        result["rows"] = summarize(result["runs"])
        path.write_text(json.dumps(result, indent=1))
        path.with_suffix(".md").write_text(markdown(result))
        print(markdown(result))
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/README.md, "Noise"
    src = str(Path(args.timesformer_src).resolve()) if args.timesformer_src else None
    configs = [c for c in args.only.split(",") if c]
    unknown = [c for c in configs if c not in CONFIG_BY_NAME]
    if unknown:
        ap.error(f"unknown configs {unknown}; known: {', '.join(CONFIG_BY_NAME)}")
    plan = []
    for rnd in range(args.rounds):
        for cfg in configs:
            for prec in args.precisions.split(","):
                cells = [v for v in variants(cfg) if v["impl"] == "ours" or src or cfg.startswith("unetr")]
                for v in cells if rnd % 2 == 0 else cells[::-1]:
                    plan.append(dict(config=cfg, mode="train", precision=prec, dtype=prec, round=rnd,
                                     iters=args.iters, warmup=args.warmup, threads=args.threads, seed=0,
                                     device="cpu", timesformer_src=src, tensor_memory=rnd == 0, **v))
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "timm", "monai.networks.nets", "spatiotemporal", "einops"])
    machine, runs, t0 = machine_info(src), [], time.time()
    for i, spec in enumerate(plan, 1):
        res = run_isolated(ctx, spec, args.timeout)
        runs.append(res)
        msg = res.get("error") or (f"wall {_f(_median(res['wall_s']), '{:.3f}')} s, rss peak+ "
                                   f"{res['peak_plus_mib']:.0f} MiB, tensor peak+ "
                                   f"{res.get('tensor_peak_mib', {}).get('peak_plus', 'n/a')} MiB")
        print(f"[{time.time() - t0:6.0f} s] {i}/{len(plan)} r{spec['round']} {spec['config']} {spec['precision']} "
              f"{spec['label']}: {msg}", file=sys.stderr, flush=True)
        write(args, machine, runs, t0, complete=i == len(plan))
    print(markdown(json.loads(Path(args.out).read_text())))


if __name__ == "__main__":
    main()
