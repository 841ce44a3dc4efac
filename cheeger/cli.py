"""The ``cheeger`` command line: one thin subcommand per pipeline stage.

Each subcommand is a pair of small functions: ``_add_<name>(subparsers)`` declares its arguments
and sets ``handler=_run_<name>``; the handler loads its config from ``params.yaml`` and calls the
package. To add a stage (train, evaluate, scaling, report) write that pair and append the adder to
``_SUBCOMMANDS``. Expected errors (bad params, bad or missing data) print one line on stderr and
exit with status 1; ``--debug`` shows the traceback instead.

Example:
    $ cheeger prepare --params params.yaml --profile embedded --out results/prepared/embedded
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from cheeger.config import DataConfig, ParamsError, load_params
from cheeger.data import DataError, prepare

__all__ = ["EXPECTED_ERRORS", "build_parser", "main"]

EXPECTED_ERRORS: tuple[type[Exception], ...] = (ParamsError, DataError)


def _add_params_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="params file (%(default)s)"
    )
    parser.add_argument("--profile", help="profile under profiles: (default: `profile:`)")


def _add_prepare(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="prepare a dataset in the common format",
        description="Generate, read or download the profile's dataset and write it, resized, "
        "with native-resolution labels and a manifest, atomically to --out.",
    )
    _add_params_arguments(parser)
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder, e.g. results/prepared/<profile>"
    )
    parser.add_argument(
        "--limit", type=int, help="keep the first N images per split (overrides the profile)"
    )
    parser.set_defaults(handler=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    config = DataConfig.from_params(
        params, args.profile, base_dir=args.params.resolve().parent, origin=args.params.name
    )
    if args.limit is not None:
        if args.limit < 1:
            raise ParamsError(f"--limit: expected a positive int, got {args.limit}")
        config = replace(config, limit=args.limit)
    manifest = prepare(config, args.out)
    sizes = ", ".join(f"{name} {entry['size']}" for name, entry in manifest["splits"].items())
    h, w = manifest["resolution"]
    print(f"prepared {config.profile} ({config.dataset}): {sizes} at {h}x{w} -> {args.out}")
    return 0


_SUBCOMMANDS = (_add_prepare,)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="cheeger", description="Differentiable spectral segmentation: study pipeline stages."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of expected errors")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cheeger`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except EXPECTED_ERRORS as exc:
        if args.debug:
            raise
        print(f"cheeger {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
