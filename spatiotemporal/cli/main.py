"""``spatio``: the command line. Each sub-command lives in its own module with ``add_parser(subparsers)``."""

from __future__ import annotations

import argparse
import logging
import sys

from . import inflate_cmd, models_cmd

COMMAND_MODULES = [models_cmd, inflate_cmd]


def _optional_modules():
    mods = []
    for name in ("train_cmd", "eval_cmd", "predict_cmd", "viz_cmd"):
        try:
            mods.append(__import__(f"spatiotemporal.cli.{name}", fromlist=[name]))
        except ModuleNotFoundError as e:
            if e.name != f"spatiotemporal.cli.{name}":
                raise
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spatio", description="Video and 3D medical vision transformers.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in COMMAND_MODULES + _optional_modules():
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, KeyError, TypeError) as e:
        if args.verbose:
            raise
        print(f"spatio {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
