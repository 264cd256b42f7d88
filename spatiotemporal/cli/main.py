"""``spatio``: the command line. Each sub-command lives in its own module with ``add_parser(subparsers)``."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from . import embed_cmd, eval_cmd, inflate_cmd, models_cmd, predict_cmd, pretrain_cmd, train_cmd, viz_cmd

COMMAND_MODULES = [models_cmd, train_cmd, pretrain_cmd, eval_cmd, predict_cmd, inflate_cmd, viz_cmd, embed_cmd]
USER_ERRORS = (FileNotFoundError, FileExistsError, ValueError, KeyError, TypeError, PermissionError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spatio", description="Video and 3D medical vision transformers.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also: SPATIO_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in COMMAND_MODULES:
        mod.add_parser(sub)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Like ``parse_args``, but ``KEY=VALUE`` overrides may also follow the flags (argparse alone takes them only
    before the first flag)."""
    args, extra = parser.parse_known_args(argv)
    overrides = [e for e in extra if "=" in e and not e.startswith("-")]
    rest = [e for e in extra if e not in overrides]
    slot = next((s for s in ("overrides", "words") if hasattr(args, s)), None)
    if rest or (overrides and slot is None):
        parser.error(f"unrecognized arguments: {' '.join(rest or overrides)}")
    if overrides:
        setattr(args, slot, list(getattr(args, slot) or []) + overrides)
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as e:
        if args.debug or os.environ.get("SPATIO_DEBUG"):
            raise
        msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        print(f"spatio {args.command}: error: {msg.splitlines()[0] if msg else type(e).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
