"""Where TimeSformer-tiny's attention goes on the motion set: the share of each patch query's attention that lands
on tokens of *other frames*, per block, for the runs of ``benchmarks/temporal_order.py`` (run that first).

For joint attention (one softmax over the class token and all T*N patch tokens) the share is the weight on
patches of frames other than the query's own; a uniform softmax gives (T-1)*N / (T*N+1) (87% at T=8, N=16).
For divided attention it is the temporal attention's weight off the query's own frame (uniform: (T-1)/T).
Each trained model (``checkpoints/best.pt``) is compared with the same architecture at initialisation (same seed,
the model's own init), on the first ``--clips`` val clips of the motion set (one centre clip each), eval mode,
weights recorded by ``spatiotemporal.layers.record_attention`` (explicit softmax; the fast path's outputs are
equal, see ``tests/viz``). Also the share on the class token (joint only).

Results: ``RESULTS/attention_mass.{json,md}``.

Usage: python benchmarks/attention_mass.py [--runs runs/temporal_order/builtin_motion] [--arms divided joint
       joint_te002 joint_p16 joint_2x divided_2x] [--seeds 0 1 2] [--clips 64] [--results benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import torch


def shares(model: torch.nn.Module, clips: torch.Tensor) -> list[dict]:
    """Per block: mean off-frame share of patch queries' attention (and class-token share for joint)."""
    from spatiotemporal.layers import record_attention

    t, h, w = _grid(model, clips)
    n, p = h * w, model.num_prefix
    with torch.inference_mode(), record_attention() as rec:
        model(clips)
    out = []
    for a in rec:
        a = a.float()
        if a.shape[-1] == t and a.shape[-2] == t:  # divided: temporal attention (B*N, heads, T, T)
            off = 1 - a.diagonal(dim1=-2, dim2=-1).mean()
            out.append({"kind": "temporal", "off_frame": float(off), "uniform": (t - 1) / t, "peak": _peak(a)})
        elif a.shape[-1] == p + t * n:  # joint: (B, heads, P+T*N, P+T*N)
            q = a[..., p:, :]  # patch queries
            frame_of = torch.arange(t * n, device=a.device) // n
            same = (frame_of[:, None] == frame_of[None, :]).to(a.dtype)  # (TN, TN)
            own = (q[..., p:] * same).sum(-1).mean()
            cls = q[..., :p].sum(-1).mean() if p else torch.tensor(0.0)
            out.append({"kind": "joint", "off_frame": float(1 - own - cls), "cls": float(cls),
                        "uniform": (t - 1) * n / (t * n + p), "peak": _peak(q)})
    return out


def _peak(a: torch.Tensor) -> float:
    """Mean over queries of the largest weight, in units of the uniform weight ``1 / Nk`` (1 = uniform)."""
    return float(a.amax(-1).mean() * a.shape[-1])


def _grid(model, clips) -> tuple[int, int, int]:
    with torch.inference_mode():
        _, grid = model._embed(clips[:1])
    return tuple(grid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, default=Path("runs/temporal_order/builtin_motion"))
    ap.add_argument("--arms", nargs="+", default=["divided", "joint", "joint_te002", "joint_p16", "joint_2x",
                                                  "divided_2x"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    from spatiotemporal import load_pretrained
    from spatiotemporal.models.pretrained import build_model, inspect_checkpoint
    from spatiotemporal.pipelines import pipeline_for

    result: dict = {"argv": sys.argv[1:], "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "runs": {}}
    clips = None
    for arm in a.arms:
        for seed in a.seeds:
            ckpt = a.runs / f"{arm}_s{seed}" / "checkpoints" / "best.pt"
            if not ckpt.is_file():
                print(f"skip {ckpt} (not trained)", flush=True)
                continue
            model = load_pretrained(ckpt)
            if clips is None:
                recipe = pipeline_for(model).recipe_from_checkpoint(model, [], ckpt)
                items = pipeline_for(model).dataset_items(recipe, "val")
                got = [items.get(i) for i in range(min(a.clips, len(items.ids)))]
                clips = torch.stack([g[0] for g in got if g is not None])
            info = inspect_checkpoint(ckpt, {})
            torch.manual_seed(seed)
            init = build_model(info.detected.arch, dict(info.detected.config)).eval()
            result["runs"][f"{arm}/{seed}"] = {"arm": arm, "seed": seed, "trained": shares(model, clips),
                                               "init": shares(init, clips)}
            print(arm, seed, [round(b["off_frame"], 3) for b in result["runs"][f"{arm}/{seed}"]["trained"]],
                  flush=True)
    result["clips"] = int(clips.shape[0]) if clips is not None else 0
    a.results.mkdir(parents=True, exist_ok=True)
    (a.results / "attention_mass.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = render(result)
    (a.results / "attention_mass.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def render(r: dict) -> list[str]:
    lines = ["# Off-frame attention share on the motion set (TimeSformer-tiny)", "",
             f"Share (%) of each patch query's attention on tokens of other frames, per block, mean over "
             f"{r['clips']} val clips, heads and queries; mean (range) over seeds; at initialisation / trained. "
             "Joint: softmax over all frames' tokens; divided: the temporal attention. Peak: the mean over "
             "queries of the largest attention weight, in units of the uniform weight 1/Nk (1: uniform).", "",
             "| arm | seeds | uniform | block | at init | trained | class token (trained) | peak at init "
             "| peak trained |",
             "|---|---|---|---|---|---|---|---|---|"]
    arms = list(dict.fromkeys(v["arm"] for v in r["runs"].values()))
    for arm in arms:
        runs = [v for v in r["runs"].values() if v["arm"] == arm]
        for i in range(len(runs[0]["trained"])):
            tr = [100 * v["trained"][i]["off_frame"] for v in runs]
            it = [100 * v["init"][i]["off_frame"] for v in runs]
            cls = [100 * v["trained"][i].get("cls", 0.0) for v in runs]
            lines.append(f"| {arm} | {len(runs)} | {100 * runs[0]['trained'][i]['uniform']:.0f} | {i} | "
                         f"{statistics.mean(it):.0f} ({min(it):.0f}-{max(it):.0f}) | "
                         f"**{statistics.mean(tr):.0f}** ({min(tr):.0f}-{max(tr):.0f}) | "
                         + (f"{statistics.mean(cls):.0f} | " if runs[0]["trained"][i]["kind"] == "joint" else "- | ")
                         + f"{statistics.mean(v['init'][i]['peak'] for v in runs):.1f} | "
                         f"**{statistics.mean(v['trained'][i]['peak'] for v in runs):.1f}** |")
    lines += ["", f"Machine: {r['machine']}. Command: `python benchmarks/attention_mass.py {' '.join(r['argv'])}`."]
    return lines


if __name__ == "__main__":
    main()
