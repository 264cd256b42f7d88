"""The temporal-order claim in miniature, on both built-in video sets, and why joint attention misses small-object
direction.

Every run is a plain ``spatio`` command (printed before it runs, each under ``flock LOCK`` so heavy jobs on a shared
machine run one at a time; finished runs are reused):

    spatio train timesformer --out OUT/{set}/{arm}_s{seed} --epochs E --seed S --workers 0 data.dataset=SET ...
    spatio eval --checkpoint OUT/.../checkpoints/best.pt --split {val,test} --workers 0

with the recipe ``timesformer_tiny_builtin`` (TimeSformer-tiny: depth 4, width 128, patch 8, AdamW 1e-3,
batch 32, random time embedding std 1.0). Sets: ``builtin`` (the default set: a sprite's order over 8 positions
*plus* a faint global brightness ramp over time) and ``builtin_motion`` (a small disk moving up/down or
growing/shrinking, no global cue; see ``spatiotemporal/data/video/motion.py``). Arms (``--arms``):

- ``divided``, ``joint``: ``model.overrides.mixer=...``;
- ``space_only``: the official framewise space-only model (``mixer=joint framewise=true``);
- study arms (``--study``, motion set; ``--study-arms``): ``joint_te002`` (time embedding std 0.02 instead of 1.0),
  ``joint_p16`` (patch 16: 4 tokens per frame instead of 16, 32 tokens instead of 128 to attend over), and on
  request ``joint_lr3e-4`` (a third of the learning rate), ``joint_2x`` / ``divided_2x`` (twice the epochs);
- mixer arms (``--mixers``, default set): ``xca`` (XCA + per-frame LPI), ``sra`` (spatial reduction 2 per frame),
  ``mlp_mixer_axes`` (per-axis token MLPs, T then H then W), ``convmixer`` ((2+1)D: 3x3 per frame then 3 along
  time); with ``divided`` and ``joint`` they give the mixers table: val top-1, parameters, forward FLOPs per clip
  (counted) and the median time of a training step (batch 32, AdamW, 2 threads, measured under the lock).

Results: ``RESULTS/temporal_order.{json,md}`` (val top-1 final / best, test top-1 of best.pt, per-class and per-pair
accuracies), ``RESULTS/temporal_order.png`` (val curves) and ``RESULTS/video_mixers.{json,md}``.

Usage: python benchmarks/temporal_order.py [--sets builtin builtin_motion] [--arms divided joint space_only]
       [--seeds 0 1 2] [--epochs 10] [--motion-epochs 20] [--study] [--study-arms joint_te002 joint_p16]
       [--study-seeds 0 1] [--mixers] [--mixer-seeds 0 1] [--out runs/temporal_order]
       [--results benchmarks/results] [--lock /tmp/spatio-cpu.lock] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
from pathlib import Path

from inflation_helps import run_all, spatio, val_curve

ARMS = {
    "divided": ["model.overrides.mixer=divided"],
    "joint": ["model.overrides.mixer=joint"],
    "space_only": ["model.overrides.mixer=joint", "model.overrides.framewise=true"],
    "joint_te002": ["model.overrides.mixer=joint", "model.overrides.time_embed_std=0.02"],
    "joint_p16": ["model.overrides.mixer=joint", "model.overrides.patch_size=16"],
    "joint_lr3e-4": ["model.overrides.mixer=joint", "train.optim.lr=0.0003"],
    "joint_2x": ["model.overrides.mixer=joint"],
    "divided_2x": ["model.overrides.mixer=divided"],
    "xca": ["model.overrides.mixer=xca"],
    "sra": ["model.overrides.mixer=sra"],
    "mlp_mixer_axes": ["model.overrides.mixer=mlp_mixer_axes"],
    "convmixer": ["model.overrides.mixer=convmixer", "model.overrides.mixer_kwargs={kernel_size: 3}"],
}
MIXER_ARMS = ("divided", "joint", "xca", "sra", "mlp_mixer_axes", "convmixer")
#: class pairs whose two classes differ only in frame order, per set
PAIRS = {"builtin": {"right/left": ("right", "left"),
                     "right_then_left/left_then_right": ("right_then_left", "left_then_right")},
         "builtin_motion": {"up/down": ("up", "down"), "grow/shrink": ("grow", "shrink")}}


def epochs_of(arm: str, dataset: str, a) -> int:
    epochs = a.motion_epochs if dataset == "builtin_motion" else a.epochs
    return 2 * epochs if arm.endswith("_2x") else epochs


def evaluate(run: Path, split: str, lock: str | None, threads: int) -> dict:
    """``spatio eval`` of the run's best checkpoint on ``split`` (cached in ``run/eval_{split}.json``)."""
    out = run / f"eval_{split}.json"
    if not out.is_file():
        cmd = spatio("eval", "--checkpoint", str(run / "checkpoints" / "best.pt"), "--split", split,
                     "--workers", "0", "--json", str(out))
        run_all([(run / f"eval_{split}", cmd)], 1, threads, lock)
    return json.loads(out.read_text())


def pair_accuracy(per_class: dict, pair: tuple[str, str]) -> float:
    return statistics.mean(per_class[c] for c in pair)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["builtin", "builtin_motion"])
    ap.add_argument("--arms", nargs="+", default=["divided", "joint", "space_only"])
    ap.add_argument("--study", action="store_true", help="also the joint-attention study arms on the motion set")
    ap.add_argument("--study-arms", nargs="+", default=["joint_te002", "joint_p16"])
    ap.add_argument("--study-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--mixers", action="store_true", help="also the mixer arms on the default set, and their table")
    ap.add_argument("--mixer-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--profile", help=argparse.SUPPRESS)  # internal: params, FLOPs, step time of one arm (JSON)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=10, help="epochs on the default set")
    ap.add_argument("--motion-epochs", type=int, default=20, help="epochs on the motion set")
    ap.add_argument("--out", type=Path, default=Path("runs/temporal_order"))
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--lock", default="/tmp/spatio-cpu.lock", help="flock file ('' for none)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.profile:
        print(json.dumps(profile(a.profile)))
        return
    lock = a.lock or None

    plan = [(s, arm, seed) for seed in a.seeds for s in a.sets for arm in a.arms]  # seed by seed
    if a.study:
        plan += [("builtin_motion", arm, seed) for arm in a.study_arms for seed in a.study_seeds]
    if a.mixers:
        plan += [("builtin", arm, seed) for arm in MIXER_ARMS for seed in a.mixer_seeds
                 if ("builtin", arm, seed) not in plan]
    cmds = []
    for dataset, arm, seed in plan:
        d = a.out / dataset / f"{arm}_s{seed}"
        cmds.append((d, spatio("train", "timesformer", "--out", str(d), "--epochs", str(epochs_of(arm, dataset, a)),
                               "--seed", str(seed), "--workers", "0", f"data.dataset={dataset}", *ARMS[arm])))
    run_all(cmds, 1, a.threads, lock)

    runs: dict = {}
    for (dataset, arm, seed), (d, _) in zip(plan, cmds):
        summary = json.loads((d / "summary.json").read_text())
        runs[f"{dataset}/{arm}_s{seed}"] = {
            "set": dataset, "arm": arm, "seed": seed, "epochs": epochs_of(arm, dataset, a), "val_top1": val_curve(d),
            "val": evaluate(d, "val", lock, a.threads), "test": evaluate(d, "test", lock, a.threads),
            "train_wall_s": summary["wall_time_s"],
        }
    result = {"argv": sys.argv[1:], "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {a.threads} threads, "
              f"each run under flock {lock}", "runs": runs}
    a.results.mkdir(parents=True, exist_ok=True)
    (a.results / "temporal_order.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = render(result, a)
    (a.results / "temporal_order.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(result, a.results / "temporal_order.png")
    if a.mixers:
        mixers_table(result, a, lock)


def profile(arm: str, batch: int = 32, steps: int = 8) -> dict:
    """Parameters, forward FLOPs of one clip (counted) and the median wall time of a training step (``batch`` clips,
    AdamW, after 2 warm-up steps) of TimeSformer-tiny with the arm's overrides (the recipe's model)."""
    import time

    import torch

    from spatiotemporal.layers.flops import count_flops
    from spatiotemporal.pipelines import get_pipeline

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    pipe = get_pipeline("video")
    recipe = pipe.load_recipe("timesformer_tiny_builtin", ARMS[arm])
    model = pipe.build_model(recipe, ["a", "b", "c", "d"])
    x = torch.randn(batch, 3, 8, 32, 32)
    with torch.no_grad():
        flops = count_flops(lambda: model.eval()(x[:1]))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    y = torch.randint(0, 4, (batch,))
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return {"params": sum(p.numel() for p in model.parameters()), "fwd_flops_per_clip": flops,
            "train_step_ms": statistics.median(times) * 1e3, "train_step_ms_all": [t * 1e3 for t in times]}


def mixers_table(result: dict, a, lock: str | None) -> None:
    out = a.out / "profile"
    out.mkdir(parents=True, exist_ok=True)
    prof = {}
    for arm in MIXER_ARMS:
        path = out / f"{arm}.json"
        if not path.is_file():
            cmd = [sys.executable, __file__, "--profile", arm]
            run_all([(out / arm, ["bash", "-c", f"{shlex.join(cmd)} > {shlex.quote(str(path))}"])], 1, a.threads,
                    lock)
        prof[arm] = json.loads(path.read_text())
    rows = {arm: [r for r in result["runs"].values() if r["set"] == "builtin" and r["arm"] == arm]
            for arm in MIXER_ARMS}
    data = {"profile": prof,
            "val_top1": {arm: {f"s{r['seed']}": r["val_top1"] for r in rs} for arm, rs in rows.items()},
            "test_top1": {arm: {f"s{r['seed']}": r["test"]["top1"] for r in rs} for arm, rs in rows.items()},
            "machine": result["machine"], "argv": result["argv"]}
    (a.results / "video_mixers.json").write_text(json.dumps(data, indent=1) + "\n")
    lines = ["# Token mixers side by side in TimeSformer-tiny (built-in video set, CPU)", "",
             "Same recipe (timesformer_tiny_builtin: depth 4, width 128, patch 8, 8 x 32 px clips, AdamW 1e-3, "
             f"{a.epochs} epochs); only the mixer differs. Val top-1 (%) after the last / best epoch and test top-1 of "
             "the best checkpoint, mean over seeds (range); FLOPs of one clip's forward pass (counted with "
             "torch.utils.flop_counter); median train-step time of a batch of 32 clips (AdamW, 2 threads, under the "
             "lock).", "",
             "| mixer | seeds | val top-1 final | val best | test top-1 | params | forward MFLOPs / clip | "
             "train step (ms) |", "|---|---|---|---|---|---|---|---|"]
    for arm, rs in rows.items():
        if not rs:
            continue
        final, best = [r["val_top1"][-1] for r in rs], [max(r["val_top1"]) for r in rs]
        test = [r["test"]["top1"] for r in rs]
        p = prof[arm]
        lines.append(f"| {arm} | {len(rs)} | {statistics.mean(final):.1f} ({_fmt_range(final)}) | "
                     f"{statistics.mean(best):.1f} ({_fmt_range(best)}) | {statistics.mean(test):.1f} "
                     f"({_fmt_range(test)}) | {p['params'] / 1e6:.3f}M | {p['fwd_flops_per_clip'] / 1e6:.0f} | "
                     f"{p['train_step_ms']:.0f} |")
    lines += ["", f"Machine: {result['machine']}. Command: `python benchmarks/temporal_order.py "
              f"{shlex.join(result['argv'])}`."]
    (a.results / "video_mixers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _fmt_range(xs: list[float]) -> str:
    return f"{min(xs):.0f}" if round(min(xs)) == round(max(xs)) else f"{min(xs):.0f}-{max(xs):.0f}"


def render(result: dict, a) -> list[str]:
    runs = result["runs"]
    lines = ["# Temporal order on the built-in video sets (TimeSformer-tiny, CPU)", "",
             "Val top-1 (%) after the last epoch and the best epoch, test top-1 (%) of the best-val checkpoint, "
             "per seed and as mean (range over seeds). Pair columns: mean top-1 of the pair's two classes on the "
             "test split (within a pair only the frame order differs; chance 50% for a model that knows the pair).",
             ""]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs.values():
        groups.setdefault((r["set"], r["arm"]), []).append(r)
    for dataset in dict.fromkeys(r["set"] for r in runs.values()):
        pairs = PAIRS[dataset]
        lines += [f"## `{dataset}`", "",
                  "| attention | epochs | seeds | val top-1 final | val best | **test top-1** | "
                  + " | ".join(f"test {p}" for p in pairs) + " | train wall (min) |",
                  "|---|---|---|---|---|---|" + "---|" * len(pairs) + "---|"]
        for (s, arm), rs in groups.items():
            if s != dataset:
                continue
            final = [r["val_top1"][-1] for r in rs]
            best = [max(r["val_top1"]) for r in rs]
            test = [r["test"]["top1"] for r in rs]
            pcols = [[pair_accuracy(r["test"]["per_class_top1"], c) for r in rs] for c in pairs.values()]
            wall = statistics.mean(r["train_wall_s"] for r in rs) / 60
            lines.append(f"| {arm} | {rs[0]['epochs']} | {len(rs)} | {statistics.mean(final):.1f} ({_fmt_range(final)})"
                         f" | {statistics.mean(best):.1f} ({_fmt_range(best)}) | **{statistics.mean(test):.1f}** "
                         f"({_fmt_range(test)}) | " + " | ".join(f"{statistics.mean(p):.0f} ({_fmt_range(p)})"
                                                                 for p in pcols) + f" | {wall:.1f} |")
        lines += ["", "Per run, test top-1 per class (%):", "",
                  "| run | " + " | ".join(n for pair in pairs.values() for n in pair) + " |",
                  "|---|" + "---|" * (2 * len(pairs))]
        for r in runs.values():
            if r["set"] == dataset:
                pc = r["test"]["per_class_top1"]
                lines.append(f"| {r['arm']} s{r['seed']} | " + " | ".join(f"{pc[n]:.0f}" for pair in pairs.values()
                                                                          for n in pair) + " |")
        lines.append("")
    lines += [f"Machine: {result['machine']}. Command: `python benchmarks/temporal_order.py "
              f"{shlex.join(result['argv'])}`."]
    return lines


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(r["set"] for r in result["runs"].values()))
    fig, axes = plt.subplots(1, len(sets), figsize=(5.2 * len(sets), 3.8), dpi=100, squeeze=False)
    colours = {"divided": "tab:blue", "joint": "tab:orange", "space_only": "tab:grey", "joint_te002": "tab:red",
               "joint_p16": "tab:purple", "joint_lr3e-4": "tab:brown", "joint_2x": "gold", "divided_2x": "tab:cyan"}
    for ax, dataset in zip(axes[0], sets):
        seen = set()
        for r in result["runs"].values():
            if r["set"] != dataset:
                continue
            c = r["val_top1"]
            ax.plot(range(1, len(c) + 1), c, color=colours.get(r["arm"], "k"), alpha=0.75, lw=1.2,
                    label=None if r["arm"] in seen else r["arm"])
            seen.add(r["arm"])
        chance = 25
        ax.axhline(chance, color="k", lw=0.8, ls=":")
        if dataset == "builtin_motion":
            ax.axhline(50, color="k", lw=0.6, ls="--")
        ax.set(title=dataset, xlabel="epoch", ylabel="val top-1 (%)", ylim=(0, 102))
        ax.legend(fontsize=7, frameon=False, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
