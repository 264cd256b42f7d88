"""``spatio inflate CKPT --to timesformer|unetr --out FILE``: a 2D ViT made into a video or volume model."""

from __future__ import annotations

from ..models import load_pretrained, save_pretrained
from ..models.inflate import inflate_vit_to_timesformer, inflate_vit_to_unetr
from ..models.vit import VisionTransformer


def add_parser(sub) -> None:
    p = sub.add_parser("inflate", help="inflate a 2D ViT checkpoint into a TimeSformer or UNETR init checkpoint")
    p.add_argument("checkpoint", help="any 2D ViT load_pretrained reads (ours, timm, DeiT III)")
    p.add_argument("--to", required=True, choices=["timesformer", "unetr"])
    p.add_argument("--out", required=True, help="output .safetensors (a .json config is written beside it)")
    p.add_argument("--frames", type=int, default=8, help="TimeSformer: number of frames")
    p.add_argument("--attention", default="divided", help="TimeSformer: divided | joint | space_only | xca | sra")
    p.add_argument("--img-size", type=int, nargs="+", help="TimeSformer: H; UNETR: H W D")
    p.add_argument("--num-classes", type=int, help="classes (video) or output channels (volume)")
    p.add_argument("--in-channels", type=int, default=1, help="UNETR input channels")
    p.add_argument("--feature-size", type=int, default=16, help="UNETR decoder width")
    p.add_argument("--depth-mode", default="average", choices=["average", "center"], help="UNETR patch kernel")
    p.add_argument("--num-heads", type=int, help="heads of the ViT when the checkpoint does not say")
    p.set_defaults(func=run)


def run(args) -> int:
    kw = {"num_heads": args.num_heads} if args.num_heads else {}
    vit = load_pretrained(args.checkpoint, **kw)
    if not isinstance(vit, VisionTransformer):
        raise ValueError(f"{args.checkpoint} is a {type(vit).__name__}, not a 2D ViT")
    if args.to == "timesformer":
        cfg = {"num_frames": args.frames, "attention": args.attention}
        if args.img_size:
            cfg["img_size"] = args.img_size[0]
        if args.num_classes:
            cfg["num_classes"] = args.num_classes
        model = inflate_vit_to_timesformer(vit, **cfg)
    else:
        size = tuple(args.img_size) if args.img_size else (96, 96, 96)
        if len(size) != 3:
            raise ValueError(f"--img-size for UNETR takes H W D, got {size}")
        model = inflate_vit_to_unetr(vit, depth_mode=args.depth_mode, img_size=size, in_channels=args.in_channels,
                                     out_channels=args.num_classes or 14, feature_size=args.feature_size)
    path = save_pretrained(model, args.out)
    print(f"wrote {path} ({sum(p.numel() for p in model.parameters()):,} parameters)")
    return 0
