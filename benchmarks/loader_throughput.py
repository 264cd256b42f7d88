"""Does the data side keep up? Loader throughput against the model's training throughput, per recipe.

Loaders are the ones ``spatio train`` builds (the recipe's dataset, sampler and collate in a ``DataLoader`` of the
recipe's batch size), read for ``--batches`` batches after one warm-up batch, with 0, 1 and 2 worker processes:

- ``timesformer_tiny_builtin`` (built-in 32 px videos), with decord and with PyAV;
- ``timesformer_base_k400``'s clip pipeline (8 x 32 frames, short side U[256, 320], 224 crop) on 340x256 H.264
  clips (``video_loading.py``'s synthetic videos, default x264 GOP), with decord and with PyAV, batch 8;
- ``mvit_v2_s_k400``'s full augmentation stack on the same clips (16 x 4 frames; RandAugment rand-m7-n4-mstd0.5-inc1
  on the decoded frames, relative-scale random resized crop 224, flip, random erasing 0.25, 2 clips per decoded
  video; the recipe's 4 videos = 8 clips per batch), decord; its model side is one MViTv2-S train step (mixup /
  cutmix + smoothing included) of ``--mvit-clips`` random clips, timed here;
- ``unetr_tiny_builtin`` (CT phantoms, in-memory cache, random 48^3 crops);
- ``vit_tiny_builtin`` (shapes, 3-Augment, repeated augmentation).

The model side is one training step of the recipe's model and batch at the trainer's default ``amp=auto``
(``compile_payoff.cell``, eager; for the K400 pipeline, TimeSformer-B 8x224 from ``models_cpu_passive.json``'s
defaults comparison, per clip). Workers needed = ceil(model samples/s / loader samples/s with one worker): the
loader scales with its workers as long as each has a core of its own.

``recipe workers`` is the recipe's ``train.num_workers``; the loader feeds the model when workers needed <= it.

Usage: python benchmarks/loader_throughput.py [--batches 6] [--workers 0,1,2] [--cases mvit] [--mvit-clips 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from spatiotemporal.pipelines import pipeline_for_recipe  # noqa: E402

CASES = {  # name -> (recipe, overrides)
    "video builtin, decord": ("timesformer_tiny_builtin", ["data.video.backend=decord"]),
    "video builtin, pyav": ("timesformer_tiny_builtin", ["data.video.backend=pyav"]),
    "video K400 pipeline, decord": ("timesformer_base_k400", ["data.video.backend=decord", "train.batch_size=8"]),
    "video K400 pipeline, pyav": ("timesformer_base_k400", ["data.video.backend=pyav", "train.batch_size=8"]),
    "video MViTv2-S K400 full augmentation, decord": ("mvit_v2_s_k400", ["data.video.backend=decord"]),
    "volume builtin": ("unetr_tiny_builtin", []),
    "image builtin": ("vit_tiny_builtin", []),
}


def k400_like(root: Path, n: int = 8, repeat: int = 8) -> Path:
    """A Kinetics-layout folder of ``n`` synthetic 10 s 340x256 H.264 clips (2 classes), each listed ``repeat``
    times (an epoch of ``n * repeat`` clips, random starts)."""
    from video_loading import make_video

    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("a\nb\n")
    lines = []
    for i in range(n):
        path = root / f"clip{i}.mp4"
        if not path.is_file():
            make_video(path, "libx264", seed=i)
        lines.append(f"{path.name} {i % 2}")
    for split in ("train", "val", "test"):
        (root / f"{split}.csv").write_text("\n".join(lines * repeat) + "\n")
    return root


def loader_rate(recipe_name: str, overrides: list[str], workers: int, batches: int, k400_root: Path) -> dict:
    """Samples/s of the recipe's training loader with ``workers`` processes."""
    pipe = pipeline_for_recipe(recipe_name)
    if recipe_name.endswith("k400"):
        overrides = [*overrides, f"data.root={k400_root}"]
    recipe = pipe.load_recipe(recipe_name, overrides)
    train_ds, _ = pipe.datasets(recipe)
    factory = pipe.sampler_factory(recipe)
    sampler = factory(train_ds, True, 0, 0, 1) if factory else None
    b = recipe.train.batch_size
    loader = DataLoader(train_ds, batch_size=b, sampler=sampler, shuffle=sampler is None, num_workers=workers,
                        collate_fn=type(pipe).collate, drop_last=True)
    it = iter(loader)
    next(it)  # warm-up: worker start-up, first decode
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        try:
            n += len(next(it)["label"])
        except StopIteration:
            it = iter(loader)
            n += len(next(it)["label"])
    wall = time.perf_counter() - t0
    return dict(samples=n, wall_s=round(wall, 3), rate=round(n / wall, 2), batch=b,
                recipe_workers=recipe.train.num_workers)


def k400_step_rate(recipe_name: str, precision: str, clips: int, k400_root: Path, steps: int = 2) -> float:
    """Clips/s of the recipe's train step (its model, task with mixup and loss, AdamW) on ``clips`` random clips
    at the recipe's input size, 400 classes; one warm-up step, then the mean of ``steps``."""
    from spatiotemporal.engine.optim import build_optimizer
    from spatiotemporal.engine.precision import amp_dtype, autocast

    pipe = pipeline_for_recipe(recipe_name)
    recipe = pipe.load_recipe(recipe_name, [f"data.root={k400_root}"])
    names = [str(i) for i in range(400)]
    model = pipe.build_model(recipe, names)
    pipe.resolve_data(recipe, model)
    task = pipe.task(recipe, names, {})
    opt = build_optimizer(model, recipe.train.optim)
    spec = model.input_spec()
    dtype = amp_dtype("none" if precision == "fp32" else "bf16", torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    batch = {pipe.input_key: torch.randn(clips, spec.channels, *spec.size, generator=g),
             "label": torch.randint(0, len(names), (clips,), generator=g)}
    times = []
    model.train()
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        with autocast(torch.device("cpu"), dtype):
            loss, _, _ = task.train_step(model, {k: v.clone() for k, v in batch.items()})
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return clips / (sum(times[1:]) / steps)


def model_rate(recipe_name: str, precision: str, mvit_clips: int = 2, k400_root: Path | None = None) -> float | None:
    """The model's training samples/s at ``precision`` for the recipe's batch."""
    if recipe_name == "mvit_v2_s_k400":
        return k400_step_rate(recipe_name, precision, mvit_clips, k400_root)
    if recipe_name.endswith("k400"):
        path = HERE / "results" / "models_cpu_passive.json"
        if not path.is_file():
            return None
        rows = json.loads(path.read_text())["rows"]
        row = next((r for r in rows if r["config"] == "timesformer_b_8x224_divided" and r["mode"] == "train"
                    and r["comparison"] == "defaults"), None)
        return 1.0 / row["ours"]["wall_s"] if row and row["ours"]["wall_s"] else None
    from compile_payoff import cell

    res = cell(recipe_name, precision, False, 3, torch.get_num_threads())
    return res["batch"] / res["step_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--workers", default="0,1,2")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the model step")
    ap.add_argument("--cases", default="", help="only the cases whose name or recipe contains this (e.g. mvit)")
    ap.add_argument("--mvit-clips", type=int, default=2, help="clips of the timed MViTv2-S train step")
    ap.add_argument("--out", default=None, help="default results/loader_throughput[_CASES].json")
    args = ap.parse_args()
    args.out = args.out or str(HERE / "results" / f"loader_throughput{'_' + args.cases if args.cases else ''}.json")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    torch.set_num_threads(args.threads)
    from models import auto_amp

    precision = auto_amp("cpu")
    rows, models = [], {}
    with tempfile.TemporaryDirectory(prefix="k400_like_") as tmp:
        k400 = k400_like(Path(tmp))
        for name, (recipe, over) in CASES.items():
            if args.cases.lower() not in f"{name} {recipe}".lower():
                continue
            if recipe not in models:
                models[recipe] = model_rate(recipe, precision, args.mvit_clips, k400)
            rates = {}
            for w in args.workers.split(","):
                rates[w] = loader_rate(recipe, over, int(w), args.batches, k400)
                print(f"{name}, {w} workers: {rates[w]['rate']:.1f} samples/s", file=sys.stderr, flush=True)
            m = models[recipe]
            one = rates.get("1", next(iter(rates.values())))["rate"]
            rows.append(dict(case=name, recipe=recipe, loader=rates, model_rate=m and round(m, 2),
                             workers_needed=math.ceil(m / one) if m else None,
                             recipe_workers=next(iter(rates.values()))["recipe_workers"]))
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    kind = f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}, " + (
        "native bf16 (avx512_bf16/amx)" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "no native bf16")
    result = dict(machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {kind}",
                  precision=precision, threads=args.threads, rows=rows,
                  command="python benchmarks/loader_throughput.py " + " ".join(sys.argv[1:]))
    Path(args.out).write_text(json.dumps(result, indent=1))
    Path(args.out).with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    ws = sorted({w for r in result["rows"] for w in r["loader"]}, key=int)
    lines = ["# Loader throughput vs the model's training throughput", "",
             f"{result['machine']}, under `flock /tmp/spatio-cpu.lock`; model step at amp=auto "
             f"({result['precision']}), {result['threads']} threads; loaders: the recipe's dataset, sampler and "
             "collate, 1 torch thread per worker. Samples/s (clips, crops or images).", "",
             *([f"Command: `{result['command']}`", ""] if result.get("command") else []),
             "| loader | recipe | " + " | ".join(f"{w} workers" for w in ws) + " | model train samples/s | "
             "workers needed | recipe workers |", "|---|---|" + "---|" * (len(ws) + 3)]
    for r in result["rows"]:
        cells = " | ".join(f"{r['loader'][w]['rate']:.1f}" if w in r["loader"] else "n/a" for w in ws)
        m = f"{r['model_rate']:.2f}" if r["model_rate"] else "n/a"
        lines.append(f"| {r['case']} | {r['recipe']} | {cells} | {m} | {r['workers_needed'] or 'n/a'} | "
                     f"{r.get('recipe_workers', 'n/a')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
