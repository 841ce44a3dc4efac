"""The study around the runs (:mod:`cheeger.study`): variants, sweeps, the trial and the report.

``cheeger variant``, ``gradients``, ``broadening``, ``scaling``, ``trial`` and ``report``.

Example:
    $ cheeger variant --set spectral.alpha=0.3 --out variant.yaml
    $ cheeger report --profile embedded --no-panel
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cheeger.commands.arguments import (
    add_params_arguments,
    add_results_argument,
    positive_int,
    set_threads,
)
from cheeger.config import load_params

__all__ = [
    "add_broadening",
    "add_gradients",
    "add_report",
    "add_scaling",
    "add_trial",
    "add_variant",
]


def add_variant(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``cheeger variant``."""
    parser = subparsers.add_parser(
        "variant",
        description="Write --out: the params file with each --set KEY=VALUE applied (in the "
        "shared section and in the profile's override of it, if any), the profile made active "
        "and relative paths rebased; checked like params.yaml. VALUE is JSON or a plain string.",
    )
    add_params_arguments(parser)
    parser.add_argument("--set", dest="settings", action="append", required=True,
                        metavar="KEY=VALUE",
                        help="e.g. spectral.alpha=0.3 (repeatable)")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="variant params file")
    parser.set_defaults(handler=_run_variant)


def _run_variant(args: argparse.Namespace) -> int:
    from cheeger.study.variants import parse_setting, write_variant

    settings = dict(parse_setting(text) for text in args.settings)
    variant = write_variant(args.params, args.out, settings, args.profile)
    changes = ", ".join(f"{key} = {value!r}" for key, value in settings.items())
    print(f"variant of {args.params} ({variant['profile']}): {changes} -> {args.out}")
    return 0


def add_gradients(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``cheeger gradients``."""
    parser = subparsers.add_parser(
        "gradients",
        description="Differentiate eigsh on matrices with a planted eigenvalue pair of shrinking "
        "gap, with the exact (eps=0) and broadened backward (study.gradients); CSV to --out.",
    )
    add_params_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="CSV file")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads")
    parser.set_defaults(handler=_run_gradients)


def _run_gradients(args: argparse.Namespace) -> int:
    from cheeger.study.gradients import GradientsConfig, gradient_sweep, write_sweep

    params = load_params(args.params)
    config = GradientsConfig.from_params(params, args.profile, origin=args.params.name)
    set_threads(args.threads)
    table = write_sweep(gradient_sweep(config), args.out)
    print(f"gradient sweep: {config.gaps} gaps x {len(config.eps)} eps x {len(config.pairs)} "
          f"pairs x {len(config.losses)} losses x {config.trials} trials -> {table}")  # fmt: skip
    return 0


def add_broadening(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``cheeger broadening``."""
    parser = subparsers.add_parser(
        "broadening",
        description="Measure the head's broadened gradient against its exact closed form on "
        "8-neighbour colour graphs of the prepared images (study.broadening); CSV to --out.",
    )
    add_params_arguments(parser)
    parser.add_argument("--prepared", type=Path, required=True, help="prepared data folder")
    parser.add_argument("--out", type=Path, required=True, help="CSV file")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads")
    parser.set_defaults(handler=_run_broadening)


def _run_broadening(args: argparse.Namespace) -> int:
    from cheeger.study.broadening import (
        BroadeningConfig,
        broadening_sweep,
        prepared_images,
        write_table,
    )

    params = load_params(args.params)
    config = BroadeningConfig.from_params(params, args.profile, origin=args.params.name)
    set_threads(args.threads)
    images = prepared_images(args.prepared, config.split, config.frames)
    table = write_table(broadening_sweep(images, config), args.out)
    print(f"broadening: {len(images)} images x {len(config.sizes)} sizes x {len(config.rules)} "
          f"rules x {len(config.eps)} eps -> {table}")  # fmt: skip
    return 0


def add_scaling(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``cheeger scaling``."""
    parser = subparsers.add_parser(
        "scaling",
        description="Run the eigensolver benchmark with the sizes, k and solvers of "
        "study.scaling; write its JSON to --out and one row per (solver, n) to --table.",
    )
    add_params_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="benchmark JSON file")
    parser.add_argument("--table", type=Path, required=True, help="tidy CSV for the report")
    parser.add_argument("--checkout", type=Path,
                        help="checkout holding benchmarks/ (default: this package's)")  # fmt: skip
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads")
    parser.set_defaults(handler=_run_scaling)


def _run_scaling(args: argparse.Namespace) -> int:
    from cheeger.study.scaling import ScalingConfig, run_scaling

    params = load_params(args.params)
    config = ScalingConfig.from_params(params, args.profile, origin=args.params.name,
                                       base_dir=args.params.resolve().parent)  # fmt: skip
    set_threads(args.threads)  # this process only: the benchmark's own runs use scaling.threads
    table = run_scaling(config, args.out, args.table, root=args.checkout)
    print(f"eigensolver scaling: {len(table)} (solver, n) points -> {args.out}, {args.table}")
    return 0


def add_trial(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``cheeger trial``."""
    parser = subparsers.add_parser(
        "trial",
        description="Read the trial runs' and the main runs' evaluations on the report split and "
        "write <results>/<profile>/trial/compare/<name>.{csv,md,tex} and summary.json: "
        "mean, std and t intervals over seeds, and the trial minus each head with Welch's "
        "interval and verdict (summary.json alone when the profile has no trial).",
    )
    add_params_arguments(parser)
    add_results_argument(parser)
    parser.set_defaults(handler=_run_trial)


def _run_trial(args: argparse.Namespace) -> int:
    from cheeger.study.trial import write_trial

    paths = write_trial(args.params, args.profile, results=args.results)
    print(f"trial comparison -> {paths.get('md', paths['summary'])}")
    return 0


def add_report(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``cheeger report``."""
    parser = subparsers.add_parser(
        "report",
        description="Aggregate every run, evaluation, ablation and sweep of the profile (mean, "
        "std and t intervals over seeds, Welch comparison of the heads) into --out: README.md, "
        "metrics.json, tables/ (CSV, Markdown, LaTeX) and figures/ (PNG, PDF); by default in "
        "the profile's folder, <results>/<profile>/.",
    )
    add_params_arguments(parser)
    add_results_argument(parser)
    parser.add_argument("--out", type=Path, default=None,
                        help="report folder (default: <results>/<profile>)")
    parser.add_argument("--no-figures", action="store_true", help="tables and text only")
    parser.add_argument("--no-panel", action="store_true", help="skip the qualitative panel")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads")
    parser.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from cheeger.study.report import make_report

    set_threads(args.threads)
    metrics = make_report(args.params, args.profile, results=args.results, out=args.out,
                          figures=not args.no_figures, panel=not args.no_panel)  # fmt: skip
    print(f"report of {metrics['profile']} ({metrics['split']} split, {metrics['seeds']} seeds) "
          f"-> {(args.out or args.results / metrics['profile']) / 'README.md'}")  # fmt: skip
    return 0
