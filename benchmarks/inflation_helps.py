"""The ImageNet-initialisation claim in miniature: does a TimeSformer inflated from a ViT pretrained on the
built-in image set learn the built-in video set faster than one trained from scratch?

Steps (every one is a plain ``spatio`` command, printed before it runs; finished runs are reused):

1. ``spatio train vit --out OUT/vit --epochs E`` -- the miniature DeiT III recipe (configs/vit_tiny_builtin.yaml)
   on the built-in shapes set.
2. For each seed, three ``spatio train timesformer --out OUT/{arm}_s{seed} --epochs N --seed S`` runs with the
   same recipe (configs/timesformer_tiny_builtin.yaml), budget, seed and data order; only the initial weights differ:
   ``scratch`` (no ``--init``); ``inflated`` (``--init OUT/vit/checkpoints/last.pt``: spatial attention copied into
   temporal attention, ``temporal_fc`` zero, position embeddings resized); and the control ``random_vit``
   (``--init`` an *untrained* ViT of the same recipe, inflated the same way), which separates what the pretrained
   weights bring from what the inflated architecture (LayerScale, copied temporal attention) brings; and
   ``inflated_zero_te``, ``inflated`` with the official all-zero time embedding (``time_embed_std=0``) instead of
   the recipe's random one.
3. Val top-1 after every epoch, read from each run's ``metrics.jsonl``, goes to ``RESULTS/inflation_helps.{json,md}``
   and a learning-curve plot ``RESULTS/inflation_helps.png``.

Usage: python benchmarks/inflation_helps.py [--vit-epochs 20] [--video-epochs 10] [--seeds 0 1 2] [--jobs 2]
       [--out runs/inflation_helps] [--results benchmarks/results] [key=value recipe overrides for the video runs]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ARMS = {
    "scratch": "scratch",
    "random_vit": "untrained ViT, inflated",
    "inflated_zero_te": "pretrained ViT, inflated, zero time embedding",
    "inflated": "pretrained ViT, inflated",
}


def spatio(*args: str) -> list[str]:
    return [sys.executable, "-m", "spatiotemporal.cli.main", *args]


def run_all(cmds: list[tuple[Path, list[str]]], jobs: int, threads: int, lock: str | None = None) -> dict[str, float]:
    """Run ``(run_dir, argv)`` commands, ``jobs`` at a time with ``threads`` torch threads each; returns wall
    seconds per run (runs whose ``summary.json`` exists are skipped). ``lock``: each command runs under
    ``flock LOCK`` (the wall time then includes the wait for the lock; the runs' ``summary.json`` has their own)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    pending = [(d, (["flock", lock] if lock else []) + c) for d, c in cmds if not (d / "summary.json").is_file()]
    running: list[tuple[Path, subprocess.Popen, float]] = []
    walls: dict[str, float] = {}
    while pending or running:
        while pending and len(running) < jobs:
            d, c = pending.pop(0)
            d.mkdir(parents=True, exist_ok=True)
            print("+", shlex.join(c), flush=True)
            log = open(d.parent / f"{d.name}.log", "w")
            running.append((d, subprocess.Popen(c, env=env, stdout=log, stderr=subprocess.STDOUT), time.time()))
        time.sleep(2)
        for item in list(running):
            d, p, t0 = item
            if p.poll() is not None:
                running.remove(item)
                if p.returncode != 0:
                    raise SystemExit(f"{d}: exited with {p.returncode}; see {d.parent / (d.name + '.log')}")
                walls[d.name] = time.time() - t0
    return walls


def val_curve(run_dir: Path) -> list[float]:
    """Val top-1 (%) after each epoch, in order."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r["val/top1"] for r in rows if "val/top1" in r]


def untrained_vit(path: Path, seed: int) -> Path:
    """Save the built-in ViT recipe's model at initialisation (seeded with ``seed``) to ``path``."""
    from spatiotemporal.models import save_pretrained
    from spatiotemporal.pipelines import get_pipeline

    pipe = get_pipeline("image")
    recipe = pipe.load_recipe("vit_tiny_builtin", [f"train.seed={seed}"])
    return save_pretrained(pipe.build_model(recipe, pipe.class_names(recipe)), path)


def first_epoch_at(curve: list[float], level: float) -> int | None:
    return next((i + 1 for i, v in enumerate(curve) if v >= level), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/inflation_helps"))
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--vit-epochs", type=int, default=20)
    ap.add_argument("--video-epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2, help="runs at once")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--workers", type=int, default=1, help="data-loader workers per run")
    ap.add_argument("overrides", nargs="*", help="key=value overrides for the video runs")
    a = ap.parse_args()

    vit_dir = a.out / "vit"
    walls = run_all([(vit_dir, spatio("train", "vit", "--out", str(vit_dir), "--epochs", str(a.vit_epochs),
                                      "--seed", "0", "--workers", str(a.workers)))], 1, a.threads * a.jobs)
    init = vit_dir / "checkpoints" / "last.pt"
    video = []
    for seed in a.seeds:
        arms = (("scratch", []), ("inflated", ["--init", str(init)]),
                ("random_vit", ["--init", str(untrained_vit(a.out / f"random_vit_s{seed}.safetensors", seed))]),
                ("inflated_zero_te", ["--init", str(init), "model.overrides.time_embed_std=0"]))
        for name, extra in arms:
            d = a.out / f"{name}_s{seed}"
            video.append((d, spatio("train", "timesformer", "--out", str(d), "--epochs", str(a.video_epochs),
                                    "--seed", str(seed), "--workers", str(a.workers), *extra, *a.overrides)))
    walls.update(run_all(video, a.jobs, a.threads))

    vit_curve = val_curve(vit_dir)
    vit_epochs = len(vit_curve)
    curves = {d.name: val_curve(d) for d, _ in video}
    result = {
        "argv": sys.argv[1:],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, jobs {a.jobs} x {a.threads} threads",
        "vit": {"epochs": vit_epochs, "val_top1": vit_curve},
        "video_epochs": a.video_epochs,
        "seeds": a.seeds,
        "val_top1": curves,
        "wall_s": walls,
    }
    a.results.mkdir(parents=True, exist_ok=True)
    (a.results / "inflation_helps.json").write_text(json.dumps(result, indent=1) + "\n")

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs)

    lines = [
        "# Inflation helps (built-in sets, CPU)",
        "",
        f"ViT (configs/vit_tiny_builtin.yaml, {vit_epochs} epochs): val top-1 {vit_curve[-1]:.1f}% "
        f"(best {max(vit_curve):.1f}%) on the 10-class shapes set.",
        f"TimeSformer (configs/timesformer_tiny_builtin.yaml, {a.video_epochs} epochs, seeds {a.seeds}): val top-1 "
        "(%) on the 4-class temporal-order video set (chance 25%).",
        "",
        "| init | seed | " + " | ".join(f"ep {e + 1}" for e in range(a.video_epochs)) + " | first epoch >= 90% |",
        "|---|---|" + "---|" * (a.video_epochs + 1),
    ]
    for name in ARMS:
        for seed in a.seeds:
            c = curves[f"{name}_s{seed}"]
            hit = first_epoch_at(c, 90.0)
            lines.append(f"| {ARMS[name]} | {seed} | " + " | ".join(f"{v:.0f}" for v in c) + f" | {hit or '-'} |")
        m = [mean([curves[f"{name}_s{s}"][e] for s in a.seeds]) for e in range(a.video_epochs)]
        hits = [first_epoch_at(curves[f"{name}_s{s}"], 90.0) for s in a.seeds]
        reached = sorted(h for h in hits if h is not None)
        summary = f"{len(reached)}/{len(hits)} runs" + (f" (epochs {', '.join(map(str, reached))})" if reached else "")
        lines.append(f"| **{ARMS[name]}, mean** | | " + " | ".join(f"**{v:.1f}**" for v in m) + f" | {summary} |")
    lines += ["", f"Machine: {result['machine']}. Command: `python benchmarks/inflation_helps.py "
              f"{shlex.join(sys.argv[1:])}`.", ""]
    (a.results / "inflation_helps.md").write_text("\n".join(lines))
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.4), dpi=120)
    colours = dict(scratch="tab:grey", random_vit="tab:orange", inflated_zero_te="tab:green", inflated="tab:blue")
    for name, colour in colours.items():
        for k, seed in enumerate(a.seeds):
            c = curves[f"{name}_s{seed}"]
            ax.plot(range(1, len(c) + 1), c, color=colour, alpha=0.8, marker="o", ms=3,
                    label=ARMS[name] if k == 0 else None)
    ax.axhline(25, color="k", lw=0.8, ls=":", label="chance")
    ax.set(xlabel="epoch", ylabel="val top-1 (%)", ylim=(0, 102),
           title="TimeSformer-tiny on the built-in temporal-order set")
    fig.legend(loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.savefig(a.results / "inflation_helps.png")
    print(f"wrote {a.results / 'inflation_helps.md'}, .json, .png")


if __name__ == "__main__":
    main()
