"""The ``facelab`` command line: one entry point, one module per subcommand in ``lab/cli/``.

Each subcommand module defines ``register(subparsers)``, which adds its parser and sets ``func`` (a
function of the parsed arguments returning an exit code). ``main(argv)`` returns the exit code, so tests
call it directly. User errors (bad input, missing weights) print one line and exit non-zero; ``--debug``
shows the traceback. A usable input with a problem (a truncated clip: :class:`datasets.video.DataWarning`)
prints ``facelab COMMAND: warning: ...`` on stderr and the command goes on. The long commands draw tqdm bars
on stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

__all__ = ["main", "build_parser"]

# Subcommands, in the order --help lists them.
COMMAND_MODULES = (
    "models",
    "animate",
    "metrics",
    "train",
    "evaluate",
    "batch",
    "report",
    "conference",
    "rd",
    "failures",
    "efficiency",
    "export_onnx",
    "crop",
)


def _user_errors() -> tuple[type[BaseException], ...]:
    from datasets.errors import DataError
    from lab.core.checkpoint import CheckpointError

    return (DataError, CheckpointError, FileNotFoundError, ValueError, NotImplementedError)



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facelab",
        description="facelab: talking-head face animation as an ultra-low-bitrate video-conferencing codec.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"lab.cli.{name}").register(sub)
    return parser


def _data_warnings_as_lines(command: str) -> None:
    """Print :class:`~datasets.video.DataWarning` as ``facelab COMMAND: warning: <message>`` (one line, stderr);
    other warnings as Python prints them. Call inside ``warnings.catch_warnings()``."""
    from datasets.video import DataWarning

    show = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DataWarning):
            text = str(message).strip().splitlines()
            print(f"facelab {command}: warning: {text[0] if text else category.__name__}", file=file or sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = showwarning


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        with warnings.catch_warnings():
            _data_warnings_as_lines(args.command)
            return int(args.func(args) or 0)
    except _user_errors() as e:
        if args.debug:
            raise
        msg = str(e).strip().splitlines()
        print(f"facelab {args.command}: error: {msg[0] if msg else type(e).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

