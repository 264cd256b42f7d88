"""``spatio inflate CKPT --to NAME --out FILE``: 2D weights made into an initialisation of another model."""

from __future__ import annotations

from ..models import arch_class, create_model, init_from_checkpoint, save_pretrained
from ..pipelines import family_of
from ..utils.keyvalue import nest_keys, parse_key_values


def add_parser(sub) -> None:
    p = sub.add_parser("inflate", help="initialise a video or volume model from 2D weights (e.g. a ViT into "
                       "TimeSformer, VideoMAE or UNETR) and save it; what the 2D model changes in the target's "
                       "config is one WARNING line")
    p.add_argument("checkpoint", help="any checkpoint load_pretrained reads (ours, timm, DeiT III)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="target config, e.g. num_frames=16 mixer=joint img_size=[96,96,96]")
    p.add_argument("--to", required=True, metavar="NAME", help="target family or registered model")
    p.add_argument("--out", required=True, help="output .safetensors (a .json spec is written beside it)")
    p.add_argument("--num-classes", type=int, help="outputs of the target (classes or segmentation channels)")
    p.add_argument("--depth-mode", choices=["average", "center"], help="how the 2D patch kernel spreads over depth "
                   "(volumes) or a tubelet (VideoMAE): default average (MViT: center)")
    p.add_argument("--num-heads", type=int, help="heads of the 2D model when its checkpoint does not say")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = nest_keys(parse_key_values(args.overrides, example="num_frames=16"))
    if args.num_classes is not None:
        cfg[arch_class(family_of(args.to)).head_key] = args.num_classes
    target = create_model(args.to, **cfg)
    kw = {"depth_mode": args.depth_mode} if args.depth_mode else {}
    src = {"num_heads": args.num_heads} if args.num_heads else None
    model = init_from_checkpoint(target, args.checkpoint, source_overrides=src, **kw)
    path = save_pretrained(model, args.out)
    print(f"wrote {path} ({type(model).__name__}, {sum(p.numel() for p in model.parameters()):,} parameters)")
    return 0
