"""Do the built-in results hold under bf16 autocast? The same ``spatio train`` runs, same seed, fp32 vs bf16.

Every run is a plain ``spatio train`` command with ``train.amp=none`` (fp32) or ``train.amp=bf16`` (what
``amp=auto`` picks on a CPU with native bf16); the fp32 and bf16 runs of a pair run at the same time, one torch
thread each, so their wall times compare. Sized to fit a shared 2-core machine (seed 0 only, fewer epochs than
the fp32 tables of docs/results.md where those read a plateau):

- temporal order (``timesformer_tiny_builtin``): divided 20 epochs, joint 10, framewise space-only 10;
- UNETR on the CT phantoms (``unetr_tiny_builtin``): 20 epochs (Dice at epochs 5, 10, 15, 20);
- inflation helps: the built-in ViT 20 epochs in each precision, then TimeSformers from scratch and inflated
  from that precision's ViT, 10 epochs.

Writes ``RESULTS/bf16_vs_fp32.{json,md}``. Usage::

    python benchmarks/bf16_results.py [--out runs/bf16_results] [--results benchmarks/results] [--only NAMES]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from inflation_helps import run_all, spatio  # noqa: E402

PRECISIONS = {"fp32": "train.amp=none", "bf16": "train.amp=bf16"}


def runs(out: Path, vit_init: dict[str, Path]) -> dict[str, tuple[str, list[str]]]:
    """Name -> (metric key, spatio arguments without precision and --out)."""
    video = ["train", "timesformer", "--seed", "0", "--workers", "1"]
    return {
        "divided": ("val/top1", [*video, "--epochs", "20", "model.overrides.mixer=divided"]),
        "joint": ("val/top1", [*video, "--epochs", "10", "model.overrides.mixer=joint"]),
        "space_only": ("val/top1", [*video, "--epochs", "10", "model.overrides.mixer=joint",
                                    "model.overrides.framewise=true"]),
        "unetr": ("val/mean_dice", ["train", "unetr", "--seed", "0", "--workers", "1", "--epochs", "20"]),
        "vit": ("val/top1", ["train", "vit", "--seed", "0", "--workers", "1", "--epochs", "20"]),
        "scratch": ("val/top1", [*video, "--epochs", "10"]),
        "inflated": ("val/top1", [*video, "--epochs", "10", "--init", "{vit}"]),
    }


def curve(run_dir: Path, key: str) -> list[tuple[int, float]]:
    """``(epoch, metric)`` of every evaluation."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [(round(r["epoch"]), r[key]) for r in rows if key in r]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/bf16_results"))
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--only", default="divided,joint,space_only,unetr,vit,scratch,inflated")
    a = ap.parse_args()
    names = a.only.split(",")
    vit_ckpt = {p: a.out / f"vit_{p}" / "checkpoints" / "last.pt" for p in PRECISIONS}
    spec = runs(a.out, vit_ckpt)
    walls: dict[str, float] = {}
    for stage in (["divided", "joint", "space_only", "unetr", "vit"], ["scratch", "inflated"]):
        cmds = []
        for name in (n for n in stage if n in names):
            for prec, amp in PRECISIONS.items():
                d = a.out / f"{name}_{prec}"
                args = [x.replace("{vit}", str(vit_ckpt[prec])) for x in spec[name][1]]
                cmds.append((d, spatio(*args, "--out", str(d), amp)))
        walls.update(run_all(cmds, jobs=2, threads=1))

    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, 2 runs x 1 thread", "runs": {}}
    for name in names:
        metric = spec[name][0]
        result["runs"][name] = {"metric": metric, **{
            prec: {"curve": curve(a.out / f"{name}_{prec}", metric),
                   "wall_s": walls.get(f"{name}_{prec}"),
                   "summary": json.loads((a.out / f"{name}_{prec}" / "summary.json").read_text())}
            for prec in PRECISIONS}}
    prev = a.results / "bf16_vs_fp32.json"
    if prev.is_file():  # keep the runs of earlier invocations (--only)
        old = json.loads(prev.read_text())["runs"]
        result["runs"] = {**{k: v for k, v in old.items() if k not in result["runs"]}, **result["runs"]}
    a.results.mkdir(parents=True, exist_ok=True)
    prev.write_text(json.dumps(result, indent=1) + "\n")
    (a.results / "bf16_vs_fp32.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    lines = ["# Built-in results under bf16 autocast vs fp32 (same seed, same commands)", "",
             f"Machine: {result['machine']}, under `flock /tmp/spatio-cpu.lock`. Each row: the metric at every "
             "evaluation (fp32 / bf16), the run's training throughput and wall time. Command: "
             "`python benchmarks/bf16_results.py`.", "",
             "| run | metric | evaluations (epoch: fp32 / bf16) | best fp32 / bf16 | train throughput fp32 / bf16 "
             "| wall s fp32 / bf16 |", "|---|---|---|---|---|---|"]
    for name, r in result["runs"].items():
        f, b = r["fp32"], r["bf16"]
        scale = 100.0 if r["metric"].endswith("dice") else 1.0
        evals = ", ".join(f"{e}: {x * scale:.1f} / {y * scale:.1f}" for (e, x), (_, y) in zip(f["curve"], b["curve"]))
        best = f"{max(v for _, v in f['curve']) * scale:.1f} / {max(v for _, v in b['curve']) * scale:.1f}"
        thr = " / ".join(f"{x['summary']['throughput_mean']:.1f}" for x in (f, b))
        unit = f["summary"]["throughput_unit"]
        wall = " / ".join(f"{x['wall_s']:.0f}" if x["wall_s"] else "n/a" for x in (f, b))
        lines.append(f"| {name} | {r['metric']} | {evals} | {best} | {thr} {unit} | {wall} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
