"""Whole-volume inference options on the built-in CT phantoms: Dice (+ HD95, surface Dice) and time of the plain
sliding window against gaussian blending, test-time flips and the largest connected component.

1. ``spatio train unetr --out OUT/unetr --epochs E`` (configs/unetr_tiny_builtin.yaml), once.
2. Its ``best.pt`` is evaluated on the validation phantoms with each setting (``data.inference.*`` overrides, the
   same path as ``spatio eval``), ``--rounds`` times interleaved; the fastest round's time is reported.

Usage: python benchmarks/volume_inference.py [--epochs 15] [--rounds 2] [--out runs/volume_inference]
       [--results benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

SETTINGS = {
    "plain (constant, overlap 0.25)": [],
    "gaussian": ["data.inference.mode=gaussian"],
    "flips x4 (single axes)": ["data.inference.tta_flips=single"],
    "flips x8 (all axes)": ["data.inference.tta_flips=all"],
    "gaussian + flips x8": ["data.inference.mode=gaussian", "data.inference.tta_flips=all"],
    "gaussian + flips x8 + LCC": ["data.inference.mode=gaussian", "data.inference.tta_flips=all",
                                  "data.inference.largest_component=true"],
    "plain, overlap 0.5": ["data.overlap=0.5"],
    "gaussian, overlap 0.5": ["data.overlap=0.5", "data.inference.mode=gaussian"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/volume_inference"))
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from spatiotemporal.cli.main import main as spatio
    from spatiotemporal.models import load_pretrained
    from spatiotemporal.pipelines import get_pipeline

    run = a.out / "unetr"
    t0 = time.time()
    if not (run / "summary.json").is_file():
        assert spatio(["train", "unetr", "--out", str(run), "--epochs", str(a.epochs), "--workers", "1"]) == 0
    train_s = time.time() - t0
    ckpt = run / "checkpoints" / "best.pt"
    model = load_pretrained(ckpt)
    pipe = get_pipeline("volume")
    rows: dict[str, dict] = {}
    for r in range(a.rounds):
        for name, over in SETTINGS.items():
            recipe = pipe.recipe_from_checkpoint(model, over + ["data.inference.surface_metrics=true"], ckpt)
            t = time.perf_counter()
            m = pipe.evaluate(model, recipe, "val", 1, 0, torch.device("cpu"))
            dt = time.perf_counter() - t
            prev = rows.get(name)
            rows[name] = {**m, "time_s": min(dt, prev["time_s"]) if prev else dt, "overrides": over}
            print(f"round {r} {name}: mean Dice {m['mean_dice']:.4f}, HD95 {m.get('mean_hd95', float('nan')):.2f} "
                  f"mm, NSD {m.get('mean_nsd', float('nan')):.4f}, {dt:.1f} s", flush=True)
    plain = rows["plain (constant, overlap 0.25)"]
    result = {"argv": sys.argv[1:], "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {a.threads} threads",
              "checkpoint": str(ckpt), "train_wall_s": train_s, "settings": rows}
    a.results.mkdir(parents=True, exist_ok=True)
    (a.results / "volume_inference.json").write_text(json.dumps(result, indent=1) + "\n")
    n = int(plain["num_samples"])
    lines = ["# Volume inference options on the built-in phantoms (CPU)", "",
             f"UNETR (unetr_tiny_builtin, {a.epochs} epochs), {n} validation phantoms, sliding window 48^3 "
             f"(surface Dice tolerance 2 mm); time = evaluation of all {n} volumes incl. metrics, fastest of "
             f"{a.rounds} interleaved rounds, {a.threads} threads, under the CPU lock.", "",
             "| setting | mean Dice (fg) | HD95 (mm) | surface Dice | time (s) | time / plain |",
             "|---|---|---|---|---|---|"]
    for name, m in rows.items():
        ratio = m["time_s"] / plain["time_s"]
        lines.append(f"| {name} | {m['mean_dice']:.4f} | {m.get('mean_hd95', float('nan')):.2f} | "
                     f"{m.get('mean_nsd', float('nan')):.4f} | {m['time_s']:.1f} | {ratio:.2f} |")
    (a.results / "volume_inference.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
