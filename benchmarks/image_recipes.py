"""Three recipe claims in miniature on the built-in shapes set (10 classes, 3,000 train / 500 val images, 32 px),
with the CPU-sized ViT (``vit_tiny_builtin``: depth 4, width 128, patch 8). Every run is a plain ``spatio``
command, printed, each under ``flock LOCK``; finished runs are reused.

``--study wd`` (Scaling ViT): a grid of body x head weight decay with the Scaling-ViT recipe
(``configs/scaling_vit_tiny_builtin.yaml``: MAP head without class token, Adafactor in big_vision's form, rsqrt
schedule with a linear cooldown, lr-relative decoupled decay), scored by few-shot linear probes of the final
pre-logits features: closed-form ridge regression to {-1, +1} targets (big_vision's few-shot evaluator form,
regularisation 1.0 on standardised features) fitted on k train images per class (k = 1, 5, 10; 5 random draws),
accuracy on the 500 val images. The paper's claim: a stronger head decay helps few-shot transfer.

    spatio train vit --config scaling_vit_tiny_builtin --epochs E --seed S \\
        train.optim.weight_decay=BODY train.optim.head_weight_decay=HEAD

``--study crop`` (DeiT III): Simple Random Crop (the recipe ``vit_tiny_builtin``) against Random Resized Crop
(``data.image.crop=rrc``), same everything else. Val top-1.

``--study res`` (DeiT III): training at low resolution (24 px: 9 tokens instead of 16) then fine-tuning at the
target 32 px (``--init`` the low-res weights, position embeddings resized) against training at 32 px throughout,
same number of epochs in total. Val top-1 at 32 px, training FLOPs (3 x forward, counted) and measured wall time.

Results: ``RESULTS/image_recipes.{json,md}`` and ``RESULTS/scaling_vit_wd.png``.

Usage: python benchmarks/image_recipes.py [--study wd crop res] [--seeds 0 1] [--wd-seeds 0] [--epochs 10]
       [--wd-epochs 8] [--low-res 24] [--ft-epochs 2] [--out runs/image_recipes] [--results benchmarks/results]
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

BODY_WD = (0.03, 0.3, 3.0)
HEAD_WD = (0.03, 0.3, 3.0)
SHOTS = (1, 5, 10)


def fewshot(run: Path, draws: int = 5) -> dict:
    """Few-shot ridge probes of ``run``'s final weights (``checkpoints/last.pt``), written to ``fewshot.json``."""
    import numpy as np
    import torch

    from spatiotemporal import load_pretrained
    from spatiotemporal.data.image import build_image_datasets
    from spatiotemporal.pipelines import pipeline_for

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    model = load_pretrained(run / "checkpoints" / "last.pt")
    recipe = pipeline_for(model).recipe_from_checkpoint(model, [], run / "checkpoints" / "last.pt")
    _, val = build_image_datasets(None, recipe.data.image)
    train, _ = build_image_datasets(None, recipe.data.image)
    train.transform = val.transform  # features of un-augmented train images

    def features(ds):
        loader = torch.utils.data.DataLoader(ds, batch_size=128, num_workers=0)
        with torch.inference_mode():
            out = [(model.forward_features(b["image"]), b["label"]) for b in loader]
        return torch.cat([f for f, _ in out]).numpy(), torch.cat([y for _, y in out]).numpy()

    xtr, ytr = features(train)
    xva, yva = features(val)
    k = int(ytr.max()) + 1
    result = {}
    for shots in SHOTS:
        accs = []
        for draw in range(draws):
            rng = np.random.default_rng(draw)
            idx = np.concatenate([rng.choice(np.flatnonzero(ytr == c), shots, replace=False) for c in range(k)])
            x, y = xtr[idx], ytr[idx]
            mu, sd = x.mean(0), x.std(0) + 1e-6
            xs = (x - mu) / sd
            t = -np.ones((len(y), k))
            t[np.arange(len(y)), y] = 1.0
            w = np.linalg.solve(xs.T @ xs + 1.0 * np.eye(xs.shape[1]), xs.T @ t)
            accs.append(float((((xva - mu) / sd @ w).argmax(1) == yva).mean() * 100))
        result[f"{shots}shot"] = {"mean": statistics.mean(accs), "draws": accs}
    (run / "fewshot.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def train_flops_per_image(img_size: int) -> int:
    """FLOPs of one training step per image: 3 x the forward FLOPs (counted) of ``vit_tiny_builtin`` at ``img_size``."""
    import torch

    from spatiotemporal import create_model
    from spatiotemporal.layers.flops import count_flops

    m = create_model("vit_tiny_builtin", img_size=img_size).eval()
    with torch.no_grad():
        return 3 * count_flops(lambda: m(torch.randn(1, 3, img_size, img_size)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", nargs="+", default=["wd", "crop", "res"], choices=["wd", "crop", "res"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--wd-seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--wd-epochs", type=int, default=8)
    ap.add_argument("--low-res", type=int, default=24)
    ap.add_argument("--ft-epochs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/image_recipes"))
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--lock", default="/tmp/spatio-cpu.lock")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--probe", type=Path, help=argparse.SUPPRESS)  # internal: few-shot probes of one run
    a = ap.parse_args()
    if a.probe:
        fewshot(a.probe)
        return
    lock = a.lock or None
    common = ["--workers", "0"]
    result: dict = {"argv": sys.argv[1:], "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {a.threads} "
                    f"threads, each run under flock {lock}"}

    if "wd" in a.study:
        cmds = {}
        for body in BODY_WD:
            for head in HEAD_WD:
                for seed in a.wd_seeds:
                    d = a.out / "wd" / f"body{body}_head{head}_e{a.wd_epochs}_s{seed}"
                    cmds[(body, head, seed)] = (d, spatio(
                        "train", "vit", "--config", "scaling_vit_tiny_builtin", "--out", str(d), "--epochs",
                        str(a.wd_epochs), "--seed", str(seed), *common, f"train.optim.weight_decay={body}",
                        f"train.optim.head_weight_decay={head}"))
        run_all(list(cmds.values()), 1, a.threads, lock)
        probes = [(d / "probe", [sys.executable, __file__, "--probe", str(d)]) for d, _ in cmds.values()
                  if not (d / "fewshot.json").is_file()]
        run_all(probes, 1, a.threads, lock)
        result["wd"] = {f"{b}/{h}/{s}": {"body": b, "head": h, "seed": s, "val_top1": val_curve(d),
                                         "fewshot": json.loads((d / "fewshot.json").read_text())}
                        for (b, h, s), (d, _) in cmds.items()}

    if "crop" in a.study:
        cmds = {}
        for crop in ("src", "rrc"):
            for seed in a.seeds:
                d = a.out / "crop" / f"{crop}_s{seed}"
                cmds[(crop, seed)] = (d, spatio("train", "vit", "--out", str(d), "--epochs", str(a.epochs),
                                                "--seed", str(seed), *common, f"data.image.crop={crop}"))
        run_all(list(cmds.values()), 1, a.threads, lock)
        result["crop"] = {f"{c}/{s}": {"crop": c, "seed": s, "val_top1": val_curve(d)}
                          for (c, s), (d, _) in cmds.items()}

    if "res" in a.study:
        low_epochs = a.epochs - a.ft_epochs
        runs: dict = {}
        for seed in a.seeds:
            full = a.out / "res" / f"full32_s{seed}"
            low = a.out / "res" / f"low{a.low_res}_s{seed}"
            ft = a.out / "res" / f"low{a.low_res}_ft32_s{seed}"
            run_all([(full, spatio("train", "vit", "--out", str(full), "--epochs", str(a.epochs), "--seed",
                                   str(seed), *common)),
                     (low, spatio("train", "vit", "--out", str(low), "--epochs", str(low_epochs), "--seed",
                                  str(seed), *common, f"data.image.img_size={a.low_res}"))], 1, a.threads, lock)
            run_all([(ft, spatio("train", "vit", "--out", str(ft), "--epochs", str(a.ft_epochs), "--seed", str(seed),
                                 *common, "--init", str(low / "checkpoints" / "last.pt"), "train.sched.warmup_epochs=0",
                                 "train.optim.lr=0.0003"))], 1, a.threads, lock)
            for arm, d in (("full", full), ("low", low), ("ft", ft)):
                runs[f"{arm}/{seed}"] = {"arm": arm, "seed": seed, "val_top1": val_curve(d),
                                         "train_wall_s": json.loads((d / "summary.json").read_text())["wall_time_s"],
                                         "images_seen": json.loads((d / "summary.json").read_text())["samples_seen"]}
        result["res"] = {"runs": runs, "low_res": a.low_res, "epochs": a.epochs, "ft_epochs": a.ft_epochs,
                         "train_flops_per_image": {"32": train_flops_per_image(32),
                                                   str(a.low_res): train_flops_per_image(a.low_res)}}

    a.results.mkdir(parents=True, exist_ok=True)
    path = a.results / "image_recipes.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    commands = {**old.get("commands", {s: old["argv"] for s in ("wd", "crop", "res") if s in old}),
                **{s: result["argv"] for s in a.study}}
    old.update(result, commands=commands)
    if "wd" in a.study:
        old["wd_epochs"] = a.wd_epochs
    path.write_text(json.dumps(old, indent=1) + "\n")
    lines = render(old)
    (a.results / "image_recipes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if "wd" in old:
        plot_wd(old["wd"], a.results / "scaling_vit_wd.png")


def _mean(xs) -> float:
    return statistics.mean(xs)


def render(r: dict) -> list[str]:
    lines = ["# Recipe claims in miniature (built-in shapes set, ViT-tiny, CPU)", ""]
    if "wd" in r:
        cells = r["wd"].values()
        seeds = sorted({c["seed"] for c in cells})
        lines += ["## Scaling ViT: body x head weight decay, few-shot linear probes", "",
                  f"Seeds {seeds}, {r.get('wd_epochs', '?')} epochs per cell; few-shot accuracy (%) on the 500 val "
                  "images, mean of 5 draws of k train images per "
                  "class; weight decays are relative to the lr (big_vision / timm `adafactorbv`).", ""]
        for shots in SHOTS:
            lines += [f"{shots}-shot:", "", "| body wd \\ head wd | " + " | ".join(str(h) for h in HEAD_WD) + " |",
                      "|---|" + "---|" * len(HEAD_WD)]
            for b in BODY_WD:
                row = [_mean([c["fewshot"][f"{shots}shot"]["mean"] for c in cells if c["body"] == b and c["head"] == h])
                       for h in HEAD_WD]
                lines.append(f"| {b} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
            lines.append("")
        lines += ["Val top-1 (%) of the trained classifier (last epoch):", "",
                  "| body wd \\ head wd | " + " | ".join(str(h) for h in HEAD_WD) + " |",
                  "|---|" + "---|" * len(HEAD_WD)]
        for b in BODY_WD:
            row = [_mean([c["val_top1"][-1] for c in cells if c["body"] == b and c["head"] == h]) for h in HEAD_WD]
            lines.append(f"| {b} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
        lines.append("")
    if "crop" in r:
        lines += ["## DeiT III: Simple Random Crop vs Random Resized Crop", "",
                  "| crop | seeds | val top-1 final | val best | per seed (final) |", "|---|---|---|---|---|"]
        for crop in ("src", "rrc"):
            cs = [c for c in r["crop"].values() if c["crop"] == crop]
            final, best = [c["val_top1"][-1] for c in cs], [max(c["val_top1"]) for c in cs]
            lines.append(f"| {crop} | {len(cs)} | {_mean(final):.1f} | {_mean(best):.1f} | "
                         + ", ".join(f"{v:.1f}" for v in final) + " |")
        lines.append("")
    if "res" in r:
        res = r["res"]
        fl = res["train_flops_per_image"]
        low = str(res["low_res"])
        lines += [f"## DeiT III: {low} px training + fine-tuning at 32 px vs 32 px throughout", "",
                  "| schedule | seeds | val top-1 at 32 px (final) | training GFLOPs | train wall time (s) |",
                  "|---|---|---|---|---|"]
        runs = res["runs"]
        seeds = sorted({v["seed"] for v in runs.values()})
        full = [runs[f"full/{s}"] for s in seeds]
        lows = [(runs[f"low/{s}"], runs[f"ft/{s}"]) for s in seeds]
        gf_full = _mean([f["images_seen"] * fl["32"] for f in full]) / 1e9
        gf_low = _mean([lo["images_seen"] * fl[low] + ft["images_seen"] * fl["32"] for lo, ft in lows]) / 1e9
        acc_full = [f["val_top1"][-1] for f in full]
        acc_low = [ft["val_top1"][-1] for _, ft in lows]
        lines.append(f"| 32 px, {res['epochs']} epochs | {len(seeds)} | {_mean(acc_full):.1f} "
                     f"({', '.join(f'{v:.1f}' for v in acc_full)}) | {gf_full:.0f} | "
                     f"{_mean([f['train_wall_s'] for f in full]):.0f} |")
        lines.append(f"| {low} px, {res['epochs'] - res['ft_epochs']} epochs + 32 px, {res['ft_epochs']} epochs | "
                     f"{len(seeds)} | {_mean(acc_low):.1f} ({', '.join(f'{v:.1f}' for v in acc_low)}) | "
                     f"{gf_low:.0f} | {_mean([lo['train_wall_s'] + ft['train_wall_s'] for lo, ft in lows]):.0f} |")
        lines.append(f"| ({low} px before fine-tuning, evaluated at {low} px) | {len(seeds)} | "
                     f"{_mean([lo['val_top1'][-1] for lo, _ in lows]):.1f} | | |")
        lines.append("")
    lines.append(f"Machine: {r['machine']}. Commands:")
    lines += [f"- {study}: `python benchmarks/image_recipes.py {shlex.join(argv)}`"
              for study, argv in r.get("commands", {"all": r["argv"]}).items()]
    return lines


def plot_wd(wd: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(SHOTS), figsize=(3.6 * len(SHOTS), 3.2), dpi=100)
    for ax, shots in zip(axes, SHOTS):
        grid = np.array([[_mean([c["fewshot"][f"{shots}shot"]["mean"] for c in wd.values()
                                 if c["body"] == b and c["head"] == h]) for h in HEAD_WD] for b in BODY_WD])
        im = ax.imshow(grid, cmap="viridis")
        for i in range(len(BODY_WD)):
            for j in range(len(HEAD_WD)):
                ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", color="w", fontsize=9)
        ax.set(xticks=range(len(HEAD_WD)), xticklabels=HEAD_WD, yticks=range(len(BODY_WD)), yticklabels=BODY_WD,
               xlabel="head weight decay", ylabel="body weight decay", title=f"{shots}-shot val accuracy (%)")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
