"""``spatio probe --checkpoint C``: how much a model relies on order and on single frames or slices.

The pipeline evaluates the checkpoint on a split as given and under perturbations of the input along time (video:
reversed, shuffled, static, dropped, shuffled_trend_kept) or depth (volumes: shuffled, flipped, static), and
writes the metric overall and per class with the drop from the original as JSON and a bar chart.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..engine import atomic_write_text, resolve_device
from ..models import load_pretrained
from ..pipelines import pipeline_for
from ..viz.probe_plot import plot_probe
from .common import check_family, data_flags, split_words


def add_parser(sub) -> None:
    p = sub.add_parser("probe", help="metric under time/depth perturbations (reversed, shuffled, static, ...)")
    p.add_argument("words", nargs="*", metavar="[NAME] KEY=VALUE",
                   help="optional model family to check, then data overrides")
    p.add_argument("--checkpoint", required=True, metavar="C", help="the trained model")
    p.add_argument("--data", help="dataset (default: the one the checkpoint was trained on)")
    p.add_argument("--data-root")
    p.add_argument("--split", default=None, help="split (default: test for videos, val for volumes)")
    p.add_argument("--perturb", nargs="+", metavar="NAME",
                   help="perturbations (default: all of the modality's; original is always included)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffles")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", help="output JSON (default: probe.json beside the checkpoint); the PNG goes beside it")
    p.set_defaults(func=run)


def free_path(path: Path) -> Path:
    """``path``, or ``stem_2.json``, ``stem_3.json``, ... when it (or its PNG) is taken: nothing is overwritten."""
    candidate, i = path, 1
    while candidate.exists() or candidate.with_suffix(".png").exists():
        i += 1
        candidate = path.with_name(f"{path.stem}_{i}{path.suffix}")
    return candidate


def table(result: dict) -> str:
    """The printed table: one row per perturbation, the metric, its drop and each class's value."""
    perts = result["perturbations"]
    classes = list(next(iter(perts.values()))["per_class"])
    digits = 3 if result["metric"] == "mean_dice" else 1  # Dice in [0, 1], top-1 in %
    rows = [["perturbation", result["metric"], "drop", *classes]]
    for name, r in perts.items():
        rows.append([name, f"{r[result['metric']]:.{digits}f}", f"{r['drop']:+.{digits}f}",
                     *("-" if r["per_class"][c] is None else f"{r['per_class'][c]:.{digits}f}" for c in classes)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows)


def run(args) -> int:
    name, overrides = split_words(args.words)
    device = resolve_device(args.device)
    model = load_pretrained(args.checkpoint).to(device)
    check_family(name, model)
    pipeline = pipeline_for(model)
    recipe = pipeline.recipe_from_checkpoint(model, overrides + data_flags(args), args.checkpoint)
    result = pipeline.probe(model, recipe, args.split, args.perturb, batch_size=args.batch_size,
                            workers=args.workers, device=device, seed=args.seed)
    result = {"checkpoint": Path(args.checkpoint).name, **result}
    out = Path(args.out) if args.out else Path(args.checkpoint).with_name("probe.json")
    taken = free_path(out)
    if taken != out:
        print(f"{out} (or its PNG) exists: writing {taken} instead")
    atomic_write_text(taken, json.dumps(result, indent=2) + "\n")
    title = f"{result['checkpoint']}: {result['metric']} ({result['split']})"
    plot_probe(result, taken.with_suffix(".png"), title=title)
    print(table(result))
    print(f"wrote {taken} and {taken.with_suffix('.png')}")
    return 0
