"""SegFormer3D against UNETR on the built-in CT phantoms at the same wall-clock training budget, and whether a 2D
SegFormer trained on the phantoms' slices, inflated into SegFormer3D, helps at that budget.

Each 3D run uses its family's built-in recipe (``segformer3d_builtin``, ``unetr_tiny_builtin``: same data, crops,
loss, optimiser, schedule); the number of epochs is set so that ``epochs * steps_per_epoch * step_time`` fills
``--budget-s``, with the step time measured first (forward, DiceCE, backward, AdamW on a batch of crops). The
schedule then runs to its end; validation (sliding windows, per-organ Dice) runs once, after the last epoch.
Parameters and forward FLOPs (``torch.utils.flop_counter``, one 48^3 crop) are counted for both. Run under
``flock /tmp/spatio-cpu.lock`` with 2 threads:

    flock /tmp/spatio-cpu.lock env OMP_NUM_THREADS=2 python benchmarks/segformer3d_vs_unetr.py --budget-s 420

Writes ``benchmarks/results/segformer3d_vs_unetr.json`` (and the runs under ``--runs``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from monai.losses import DiceCELoss

from spatiotemporal.layers.flops import count_flops
from spatiotemporal.pipelines import get_pipeline


def step_seconds(model: torch.nn.Module, batch: int, roi, channels: int, classes: int, steps: int = 3) -> float:
    """Mean time of a training step on random crops (after one warm-up step)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    x = torch.randn(batch, channels, *roi)
    y = torch.randint(0, classes, (batch, 1, *roi)).float()
    model.train()
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return sum(times[1:]) / steps


def budgeted_run(modality: str, config: str, budget_s: float, out: Path, steps_per_epoch: int,
                 init: str | None = None, train_len=None) -> dict:
    pipe = get_pipeline(modality)
    over = [f"train.out={out}", "train.num_workers=0", "train.eval_every=0", "train.progress=never"]
    if init:
        over.append(f"train.init={init}")
    recipe = pipe.load_recipe(config, over)
    names = pipe.class_names(recipe)
    model = pipe.build_model(recipe, names)
    spec = model.input_spec()
    t_step = step_seconds(model, recipe.train.batch_size, pipe.input_size(recipe), spec.channels, len(names))
    epochs = max(1, int(budget_s / (t_step * steps_per_epoch)))
    recipe.train.epochs = epochs
    recipe.train.sched.warmup_epochs = min(recipe.train.sched.warmup_epochs, max(0, epochs - 1))
    crop = torch.zeros(1, spec.channels, *pipe.input_size(recipe))
    model.eval()
    flops = count_flops(lambda: model(crop))
    t0 = time.perf_counter()
    summary = pipe.train(recipe)
    return {"config": config, "model": recipe.model.name, "init": init, "params": sum(p.numel() for p in
            model.parameters()), "forward_gflops_per_crop": flops / 1e9, "step_s": t_step, "epochs": epochs,
            "train_wall_s": summary.get("total_train_time_s"), "run_wall_s": time.perf_counter() - t0,
            "final_metrics": summary.get("final_metrics"), "out": str(out)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-s", type=float, default=420.0, help="training seconds per 3D run")
    ap.add_argument("--budget-2d-s", type=float, default=300.0, help="training seconds of the 2D SegFormer")
    ap.add_argument("--runs", default="runs/bench_segformer3d")
    ap.add_argument("--out", default="benchmarks/results/segformer3d_vs_unetr.json")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    runs, results = Path(args.runs), {}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save():
        out.write_text(json.dumps({"budget_s": args.budget_s, "budget_2d_s": args.budget_2d_s,
                                   "threads": args.threads, "runs": results}, indent=2) + "\n")

    steps_3d = 8  # 16 phantom cases x 1 crop / batch 2
    results["segformer3d"] = budgeted_run("volume", "segformer3d_builtin", args.budget_s, runs / "segformer3d",
                                          steps_3d)
    save()
    results["unetr"] = budgeted_run("volume", "unetr_tiny_builtin", args.budget_s, runs / "unetr", steps_3d)
    save()
    steps_2d = math.floor(659 / 16)  # built-in slices / batch
    results["segformer2d"] = budgeted_run("image_seg", "segformer_b0_builtin", args.budget_2d_s,
                                          runs / "segformer2d", steps_2d)
    save()
    init = str(runs / "segformer2d" / "checkpoints" / "last.pt")
    results["segformer3d_inflated"] = budgeted_run("volume", "segformer3d_builtin", args.budget_s,
                                                   runs / "segformer3d_inflated", steps_3d, init=init)
    save()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
