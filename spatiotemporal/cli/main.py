"""``spatio``: the command line. Each sub-command lives in its own module with ``add_parser(subparsers)``.

Errors. A user error is one line on stderr, ``spatio COMMAND: error: MESSAGE``, exit status 2 (the traceback only
with ``--debug`` or ``SPATIO_DEBUG=1``). User errors are exactly:

- :class:`~spatiotemporal.utils.errors.SpatioUserError` and its subclasses, raised where the cause is known (a
  recipe key, a flag, a checkpoint, a data file, a diverged or empty run); their message names the file, line or
  key and says what was expected;
- ``OSError`` (a missing file, a folder that cannot be written, a full disk): the system refused a path the
  user gave; the line names the path;
- any exception caused by one of those (libraries re-raise what a callback raised, e.g. MONAI's
  ``RuntimeError("applying transform ...")``): the user error's line is printed.

Ctrl-C stops with ``spatio COMMAND: interrupted`` and exit status 130 (training says which checkpoint to
``--resume`` from). Any other exception is a bug in spatiotemporal: its traceback is printed (exit status 1).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ..utils.errors import SpatioUserError, user_error_in
from . import embed_cmd, eval_cmd, inflate_cmd, models_cmd, predict_cmd, pretrain_cmd, probe_cmd, train_cmd, viz_cmd

COMMAND_MODULES = [models_cmd, train_cmd, pretrain_cmd, eval_cmd, probe_cmd, predict_cmd, inflate_cmd, viz_cmd,
                   embed_cmd]
USER_ERRORS = (SpatioUserError, OSError)


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
    debug = args.debug or os.environ.get("SPATIO_DEBUG", "") not in ("", "0")
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as e:
        if debug:
            raise
        print(f"spatio {args.command}: error: {error_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"spatio {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a library's wrapper around a user error (MONAI: RuntimeError("applying transform"))
        cause = user_error_in(e)
        if debug or cause is None:
            raise
        print(f"spatio {args.command}: error: {error_line(cause)}", file=sys.stderr)
        return 2


def error_line(e: BaseException) -> str:
    """The one line a user error prints: its message's first line; an ``OSError`` as ``PATH: reason``."""
    if isinstance(e, OSError) and not isinstance(e, SpatioUserError) and e.filename is not None:
        msg = f"{e.filename}: {e.strerror or e}" + (f" (and {e.filename2})" if e.filename2 else "")
    else:
        msg = str(e)
    lines = [ln for ln in msg.splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
