"""``spatio models``: list the registered model names with their family and modality."""

from __future__ import annotations

from ..models import arch_class, list_models, model_entry


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list registered models")
    p.add_argument("pattern", nargs="?", default="", help="only names containing this")
    p.set_defaults(func=run)


def run(args) -> int:
    names = list_models(args.pattern)
    width = max((len(n) for n in names), default=0)
    for n in names:
        e = model_entry(n)
        print(f"{n:<{width}}  {e.arch:<11}  {arch_class(e.arch).modality:<6}  {e.description}")
    return 0
