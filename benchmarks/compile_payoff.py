"""Does ``train.compile=true`` pay off? Warm-up and step time of ``torch.compile`` vs eager on the built-in recipes.

For each recipe (its model, batch size and input size, built as ``spatio train`` builds them; synthetic inputs,
so only the model is timed) and each precision (fp32, and bf16 autocast where ``amp=auto`` picks it), three fresh
processes: eager; compiled with an empty inductor cache (``cold``: a first run); compiled again with that cache
(``warm``: a later run of the same model). Each times the first training step, the first evaluation forward
(``inference_mode``: a second graph), a short last batch where the recipe has one, and ``--iters`` steady training
steps (median). From these: warm-up = (first step + first eval + short batch) compiled minus eager, the step-time
ratio, the number of steps after which compiling has paid for its warm-up, and the recipe's own step count.

Usage::

    python benchmarks/compile_payoff.py [--recipes timesformer_tiny_builtin,...] [--iters 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPES = ("timesformer_tiny_builtin", "unetr_tiny_builtin", "vit_tiny_builtin")


def cell(recipe_name: str, precision: str, compiled: bool, iters: int, threads: int) -> dict:
    """One process: build the recipe's model, time steps; returns the timings."""
    import torch

    from spatiotemporal.pipelines import pipeline_for_recipe

    torch.set_num_threads(threads)
    pipe = pipeline_for_recipe(recipe_name)
    recipe = pipe.load_recipe(recipe_name, [])
    names = pipe.class_names(recipe)
    model = pipe.build_model(recipe, names)
    pipe.resolve_data(recipe, model)
    train_ds, val_ds = pipe.datasets(recipe)
    sampler = pipe.sampler_factory(recipe)
    n_train = len(sampler(train_ds, True, 0, 0, 1)) if sampler else len(train_ds)
    task = pipe.task(recipe, names, {})
    b = recipe.train.batch_size
    spec = model.input_spec()
    shape = (spec.channels, *spec.size)
    g = torch.Generator().manual_seed(0)

    def batch(n: int) -> dict:
        x = torch.randn(n, *shape, generator=g)
        if pipe.modality == "volume":
            y = torch.randint(0, len(names), (n, 1, *spec.size), generator=g)
        else:
            y = torch.randint(0, len(names), (n,), generator=g)
        return {pipe.input_key: x, "label": y}

    from spatiotemporal.engine.compile import CompiledOrEager
    from spatiotemporal.engine.optim import build_optimizer
    from spatiotemporal.engine.precision import amp_dtype, autocast

    dtype = amp_dtype("none" if precision == "fp32" else "bf16", torch.device("cpu"))
    net = CompiledOrEager(model) if compiled else model
    opt = build_optimizer(model, recipe.train.optim)

    def train_step(bt: dict) -> float:
        t0 = time.perf_counter()
        model.train()
        with autocast(torch.device("cpu"), dtype):
            loss, _, _ = task.train_step(net, bt)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    def eval_forward(bt: dict) -> float:
        t0 = time.perf_counter()
        model.eval()
        with torch.inference_mode(), autocast(torch.device("cpu"), dtype):
            net(bt[pipe.input_key])
        return time.perf_counter() - t0

    # evaluation batches: sliding windows for volumes, else the eval batch size and the last, shorter one
    eval_b = getattr(recipe.data, "sw_batch_size", None) or recipe.train.eval_batch_size or b
    eval_short = 0 if pipe.modality == "volume" else len(val_ds) % eval_b
    steps_per_epoch = n_train // b if recipe.train.drop_last else -(-n_train // b)
    short = n_train % b if not recipe.train.drop_last else 0
    full = batch(b)
    events = {"first_step": train_step(full), "first_eval": eval_forward(batch(eval_b))}
    if eval_short:
        events["short_eval"] = eval_forward(batch(eval_short))
    if short:
        events["short_step"] = train_step(batch(short))
    steady = [train_step(full) for _ in range(iters)]
    return dict(recipe=recipe_name, precision=precision, compiled=compiled,
                still_compiled=getattr(net, "compiled", False), events=events, startup_s=sum(events.values()),
                step_s=statistics.median(steady), steps=steady, batch=b,
                steps_per_epoch=steps_per_epoch, epochs=recipe.train.epochs,
                total_steps=steps_per_epoch * recipe.train.epochs)


def run_cell(args, recipe: str, precision: str, mode: str, cache: str) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "OMP_NUM_THREADS": str(args.threads)}
    cmd = [sys.executable, __file__, "--cell", json.dumps([recipe, precision, mode != "eager", args.iters,
                                                             args.threads])]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    if out.returncode != 0:
        return dict(recipe=recipe, precision=precision, mode=mode, error=out.stderr.strip().splitlines()[-1:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res.update(mode=mode, process_s=time.perf_counter() - t0)
    print(f"{recipe} {precision} {mode}: start-up events {res['events']}, step {res['step_s']:.3f} s",
          file=sys.stderr, flush=True)
    return res


def summarize(cells: list[dict]) -> list[dict]:
    rows = []
    for recipe in dict.fromkeys(c["recipe"] for c in cells):
        for prec in dict.fromkeys(c["precision"] for c in cells if c["recipe"] == recipe):
            by = {c["mode"]: c for c in cells if c["recipe"] == recipe and c["precision"] == prec and "error" not in c}
            eager = by.get("eager")
            for mode in ("cold", "warm"):
                c = by.get(mode)
                if not (eager and c):
                    continue
                warmup = c["startup_s"] - eager["startup_s"]
                gain = eager["step_s"] - c["step_s"]
                steps = c["total_steps"]
                rows.append(dict(recipe=recipe, precision=prec, cache=mode, warmup_s=round(warmup, 1),
                                 eager_step_s=eager["step_s"], compiled_step_s=c["step_s"],
                                 step_ratio=round(c["step_s"] / eager["step_s"], 3),
                                 break_even_steps=round(warmup / gain) if gain > 0 else None, recipe_steps=steps,
                                 eager_train_s=round(steps * eager["step_s"]),
                                 compiled_train_s=round(warmup + steps * c["step_s"]),
                                 still_compiled=c["still_compiled"]))
    return rows


def markdown(result: dict) -> str:
    lines = ["# torch.compile: warm-up and payoff on the built-in recipes", "",
             f"{result['machine']}; {result['threads']} threads, OMP_WAIT_POLICY=PASSIVE, under "
             "`flock /tmp/spatio-cpu.lock`; synthetic inputs of each recipe's batch and size (model time only). "
             "warm-up = extra seconds over eager of the first training step, the first evaluation forward and the "
             "short last batches of training and evaluation (each a new graph to compile); cold = empty inductor "
             "cache (a first run), warm = a second run with that cache. Projected training time = the recipe's "
             "steps x the step time (+ warm-up).",
             "", "| recipe | precision | cache | warm-up s | eager step s | compiled step s | step ratio | "
             "break-even steps | recipe steps | projected train s eager / compiled |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        be = r["break_even_steps"] if r["break_even_steps"] is not None else "never"
        lines.append(f"| {r['recipe']} | {r['precision']} | {r['cache']} | {r['warmup_s']:.0f} | "
                     f"{r['eager_step_s']:.3f} | {r['compiled_step_s']:.3f} | **{r['step_ratio']:.2f}** | {be} | "
                     f"{r['recipe_steps']} | {r['eager_train_s']} / {r['compiled_train_s']} |")
    errors = [c for c in result["cells"] if "error" in c]
    if errors:
        lines += ["", "Errors:"] + [f"- {c['recipe']} {c['precision']} {c['mode']}: {c['error']}" for c in errors]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--iters", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--out", default=str(HERE / "results" / "compile_payoff.json"))
    ap.add_argument("--cell", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cell:
        print(json.dumps(cell(*json.loads(args.cell))))
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import platform

    cells = []
    for recipe in args.recipes.split(","):
        for prec in args.precisions.split(","):
            with tempfile.TemporaryDirectory(prefix="inductor_") as cache:
                for mode in ("eager", "cold", "warm"):
                    cells.append(run_cell(args, recipe, prec, mode, cache))
    result = dict(machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
                  threads=args.threads, cells=cells, rows=summarize(cells))
    Path(args.out).write_text(json.dumps(result, indent=1))
    Path(args.out).with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
