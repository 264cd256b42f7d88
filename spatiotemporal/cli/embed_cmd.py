"""``spatio embed``: one feature vector per clip / volume / image of a dataset split, written to safetensors or
``.npy`` + ``index.csv``; resumable. The checkpoint's pipeline reads the split."""

from __future__ import annotations

from ..engine import resolve_device
from ..pipelines import get_pipeline
from ..utils.run_lock import run_lock
from ..viz.embed_files import FORMATS, POOLS
from .viz_cmd import MODEL_HELP


def add_parser(sub) -> None:
    p = sub.add_parser("embed", help="write one feature vector per item of a dataset split (resumable)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="any checkpoint load_pretrained reads")
    src.add_argument("--model", metavar="SPEC", help=MODEL_HELP.replace(" (repeatable)", ""))
    p.add_argument("--data", help="dataset (default: the checkpoint's, else the built-in one)")
    p.add_argument("--data-root")
    p.add_argument("--split", default="val", help="dataset split (default val)")
    p.add_argument("--out", required=True, help="output folder (a finished one is never overwritten)")
    p.add_argument("--layer", type=_layer, default=None,
                   help="level whose output is pooled: a block index (negative from the end) or name (blocks.3) of a "
                        "flat model, a stage (stage2) of a hierarchy; default: the model's own embedding "
                        "(forward_features)")
    p.add_argument("--pool", default="default", choices=POOLS,
                   help="cls: class token; mean: mean of the grid tokens; default: the model's own pooling")
    p.add_argument("--format", default="safetensors", choices=FORMATS)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--chunk", type=int, default=256, help="items per resumable chunk")
    p.add_argument("--img-size", type=int, default=None)
    p.add_argument("--num-frames", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0, help="seed of a random-weight --model")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..viz.embed_files import check_settings, write_embeddings
    from ..viz.models import load_viz_model

    device = resolve_device(args.device)
    vm = load_viz_model(checkpoint=args.checkpoint, spec=args.model, device=device, seed=args.seed)
    check_settings(vm.model, args.layer, args.pool, args.format, args.batch_size, args.chunk)  # before reading data
    with run_lock(args.out, "embed"):  # one writer per --out folder, before anything is read or written
        pipeline = get_pipeline(type(vm.model).modality)
        recipe = pipeline.recipe_for_viz(vm.model, args.checkpoint, args.data, args.data_root, args.img_size,
                                         args.num_frames)
        items = pipeline.dataset_items(recipe, args.split)
        settings = {"source": vm.source, "split": args.split, "data": pipeline.describe_data(recipe),
                    "preprocessing": pipeline.preprocessing_spec(recipe)}
        meta = write_embeddings(vm.model, items, args.out, settings, args.layer, args.pool, args.format,
                                args.batch_size, args.chunk, device, not args.no_progress)
    print(f"{meta['num_rows']} embeddings of dimension {meta['dim']} ({meta['skipped']} unreadable items skipped) "
          f"from {items.description}; wrote {args.out}/embeddings.{meta['format']}, index.csv, meta.json")
    return 0


def _layer(text: str) -> int | str:
    """``--layer``: a block index stays an int (as earlier runs stored it in ``meta.json``), a name a string."""
    return int(text) if text.lstrip("-").isdigit() else text
