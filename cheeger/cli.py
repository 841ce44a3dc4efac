"""The ``cheeger`` command line: a table of subcommands, each declared by its own module.

:data:`COMMANDS` maps a subcommand's name to ``(adder, help)``. ``adder`` is
``"package.module:function"`` (``"package.module"`` alone means its ``add_parser``): a function
``add(subparsers)`` that declares the subcommand with ``subparsers.add_parser(name, ...)`` and
sets ``handler`` (``handler(args) -> exit status``). ``help`` is the subcommand's line in
``cheeger --help``. Only the module of the subcommand being run is imported (``cheeger --help``
imports none), so torch and the other slow imports are paid by the commands that use them. To
add a subcommand: write its module and add one line to :data:`COMMANDS`.

Expected errors (bad params, bad or missing data, see :func:`expected_errors`) print one line on
stderr and exit with status 1; ``--debug`` shows the traceback instead. Usage errors exit with 2.

Example:
    $ cheeger prepare --params params.yaml --profile embedded --out results/embedded/prepared
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

__all__ = ["COMMANDS", "build_parser", "expected_errors", "main"]  # and EXPECTED_ERRORS, lazily

#: Subcommand name -> (``"module:function"`` declaring it, its line in ``cheeger --help``).
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("cheeger.commands.data:add_prepare", "prepare a dataset in the common format"),
    "train": ("cheeger.commands.training:add_train",
              "train one head (resumes an interrupted run)"),
    "evaluate": ("cheeger.commands.training:add_evaluate", "metrics of a finished run on a split"),
    "features": ("cheeger.commands.data:add_features",
                 "cache the frozen pretrained encoder's taps (resumes an interrupted run)"),
    "variant": ("cheeger.commands.study:add_variant",
                "write a copy of params.yaml with keys changed (one ablation run's settings)"),
    "gradients": ("cheeger.commands.study:add_gradients",
                  "gradient stability sweep: ||dL/dA|| against the eigengap, exact and broadened"),
    "broadening": ("cheeger.commands.study:add_broadening",
                   "gradient error of the broadened backward on image graphs, per eps and eps "
                   "rule"),
    "scaling": ("cheeger.commands.study:add_scaling",
                "eigensolver scaling sweep (benchmarks/eigensolvers.py) as JSON and a tidy CSV"),
    "trial": ("cheeger.commands.study:add_trial",
              "compare the trial (study.trial) with the study's heads"),
    "report": ("cheeger.commands.study:add_report",
               "the study's tables, figures, metrics.json and README.md"),
    "unsupervised": ("cheeger.unsupervised.command",
                     "unsupervised segmentation on cached features: k-means, eigsh, NeuralEF"),
    "demo": ("cheeger.demos.command:add_demo_parser",
             "interactive demos: similarity map, live similarity, training dashboard"),
}  # fmt: skip

# Errors printed as one line, by (module, class): a class whose module was never imported
# cannot have been raised, so the check imports nothing.
_EXPECTED = (
    ("cheeger.config", "ParamsError"),
    ("cheeger.data.errors", "DataError"),
    ("cheeger.training.errors", "TrainingError"),
    ("cheeger.study.layout", "StudyFileError"),
    ("cheeger.study.scaling", "ScalingError"),
)


def expected_errors(*, load: bool = False) -> tuple[type[Exception], ...]:
    """The exception classes reported as one line: those of imported modules (all if ``load``)."""
    classes = []
    for module, name in _EXPECTED:
        loaded = importlib.import_module(module) if load else sys.modules.get(module)
        if loaded is not None:
            classes.append(getattr(loaded, name))
    return tuple(classes)


def __getattr__(name: str) -> tuple[type[Exception], ...]:
    # EXPECTED_ERRORS imports every package that defines one (torch included): only on request
    if name == "EXPECTED_ERRORS":
        return expected_errors(load=True)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _adder(spec: str) -> Callable[[argparse._SubParsersAction], None]:
    module, _, function = spec.partition(":")
    return getattr(importlib.import_module(module), function or "add_parser")


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs (``None`` for top-level help or none named)."""
    for token in argv:
        if token in ("-h", "--help"):
            return None
        if not token.startswith("-"):  # --debug is the only other top-level option
            return token if token in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The top-level parser: every subcommand listed, the one ``argv`` runs fully declared.

    Args:
        argv: the arguments to be parsed (default: ``sys.argv[1:]``); only the subcommand they
            name has its module imported and its arguments declared.
    """
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="cheeger", description="Differentiable spectral segmentation: study pipeline stages."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of expected errors")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _command_in(argv)
    for name, (spec, help_line) in COMMANDS.items():
        if name == chosen:
            _adder(spec)(subparsers)
        else:
            subparsers.add_parser(name, help=help_line)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cheeger`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except Exception as exc:
        if args.debug or not isinstance(exc, expected_errors()):
            raise
        print(f"cheeger {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
