"""Does masked-autoencoder pretraining on the built-in video set help the temporal-order task?

Per seed (every step a plain ``spatio`` command, printed before it runs; finished runs are reused):

1. ``spatio pretrain videomae --out OUT/pretrain_s{seed} --epochs P --seed S`` -- VideoMAE-tiny, 90% tube masking,
   normalised-pixel reconstruction on the train clips, labels unused (configs/videomae_tiny_mae_builtin.yaml).
2. ``spatio train videomae --out OUT/{arm}_s{seed} --epochs F --seed S`` twice, same recipe
   (configs/videomae_tiny_builtin.yaml), budget, seed and data order; only the initial weights differ: ``scratch``
   and ``mae`` (``--init OUT/pretrain_s{seed}/encoder.safetensors``, head fresh).

Val top-1 after every fine-tuning epoch (``metrics.jsonl``) goes to ``RESULTS/mae_pretraining.{json,md}``.

Usage: python benchmarks/mae_pretraining.py [--pretrain-epochs 30] [--epochs 8] [--seeds 0 1 2] [--jobs 1]
       [--threads 2] [--out runs/mae_pretraining] [--results benchmarks/results] [key=value fine-tune overrides]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from inflation_helps import first_epoch_at, run_all, spatio, val_curve

ARMS = {"scratch": "scratch", "mae": "MAE-pretrained on the built-in train clips"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/mae_pretraining"))
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--pretrain-epochs", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=1, help="runs at once")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per run")
    ap.add_argument("--workers", type=int, default=1, help="data-loader workers per run")
    ap.add_argument("overrides", nargs="*", help="key=value overrides for the fine-tuning runs")
    a = ap.parse_args()

    common = ["--workers", str(a.workers)]
    pre = [(a.out / f"pretrain_s{s}", spatio("pretrain", "videomae", "--out", str(a.out / f"pretrain_s{s}"),
                                             "--epochs", str(a.pretrain_epochs), "--seed", str(s), *common))
           for s in a.seeds]
    walls = run_all(pre, a.jobs, a.threads)
    runs = []
    for s in a.seeds:
        for arm, extra in (("scratch", []), ("mae", ["--init", str(a.out / f"pretrain_s{s}" / "encoder.safetensors")])):
            d = a.out / f"{arm}_s{s}"
            runs.append((d, spatio("train", "videomae", "--out", str(d), "--epochs", str(a.epochs), "--seed", str(s),
                                   *common, *extra, *a.overrides)))
    walls.update(run_all(runs, a.jobs, a.threads))

    curves = {d.name: val_curve(d) for d, _ in runs}
    recon = {f"pretrain_s{s}": [json.loads(x)["val/loss"] for x in (a.out / f"pretrain_s{s}" / "metrics.jsonl")
                                .read_text().splitlines() if x.strip() and "val/loss" in json.loads(x)]
             for s in a.seeds}
    result = {"argv": sys.argv[1:], "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, jobs {a.jobs} x "
              f"{a.threads} threads", "pretrain_epochs": a.pretrain_epochs, "epochs": a.epochs, "seeds": a.seeds,
              "val_top1": curves, "pretrain_val_loss": recon, "wall_s": walls}
    a.results.mkdir(parents=True, exist_ok=True)
    (a.results / "mae_pretraining.json").write_text(json.dumps(result, indent=1) + "\n")

    def mean(xs):
        return sum(xs) / len(xs)

    lines = ["# MAE pretraining on the built-in video set (CPU)", "",
             f"VideoMAE-tiny, {a.pretrain_epochs} pretraining epochs (90% tube masking), then {a.epochs} fine-tuning "
             f"epochs; val top-1 (%) on the 4-class temporal-order set (chance 25%), seeds {a.seeds}.", "",
             "| init | seed | " + " | ".join(f"ep {e + 1}" for e in range(a.epochs)) + " | first epoch >= 90% |"
             + " wall (s) |", "|---|---|" + "---|" * (a.epochs + 2)]
    for arm in ARMS:
        for s in a.seeds:
            c = curves[f"{arm}_s{s}"]
            lines.append(f"| {arm} | {s} | " + " | ".join(f"{v:.0f}" for v in c) + f" | {first_epoch_at(c, 90)} | "
                         f"{walls.get(f'{arm}_s{s}', float('nan')):.0f} |")
        lines.append(f"| **{arm} mean** | | " + " | ".join(
            f"{mean([curves[f'{arm}_s{s}'][e] for s in a.seeds]):.0f}" for e in range(a.epochs)) + " | | |")
    lines += ["", "Pretraining: val reconstruction loss first -> last epoch, wall time (s): " + "; ".join(
        f"seed {s}: {recon[f'pretrain_s{s}'][0]:.3f} -> {recon[f'pretrain_s{s}'][-1]:.3f}, "
        f"{walls.get(f'pretrain_s{s}', float('nan')):.0f}" for s in a.seeds)]
    (a.results / "mae_pretraining.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
