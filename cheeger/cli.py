"""The ``cheeger`` command line: one thin subcommand per pipeline stage.

Each subcommand is a pair of small functions: ``_add_<name>(subparsers)`` declares its arguments
and sets ``handler=_run_<name>``; the handler loads its config from ``params.yaml`` and calls the
package. To add a stage (train, evaluate, scaling, report) write that pair and append the adder to
``_SUBCOMMANDS``. Expected errors (bad params, bad or missing data) print one line on stderr and
exit with status 1; ``--debug`` shows the traceback instead.

Example:
    $ cheeger prepare --params params.yaml --profile embedded --out results/embedded/prepared
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from cheeger.config import (
    HEAD_OPTION_READERS,
    DataConfig,
    EvaluateConfig,
    LossWeightsConfig,
    ModelConfig,
    ParamsError,
    TrainConfig,
    head_options,
    load_params,
)
from cheeger.data import DataError, load_manifest, prepare
from cheeger.heads import head_names
from cheeger.study.layout import StudyFileError
from cheeger.study.scaling import ScalingError
from cheeger.training.errors import TrainingError

__all__ = ["EXPECTED_ERRORS", "build_parser", "main"]

EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    ParamsError, DataError, TrainingError, StudyFileError, ScalingError,
)  # fmt: skip


def _add_params_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="params file (%(default)s)"
    )
    parser.add_argument("--profile", help="profile under profiles: (default: `profile:`)")


def _add_results_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="folder holding the study's outputs (%(default)s)")  # fmt: skip


def _add_prepare(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="prepare a dataset in the common format",
        description="Generate, read or download the profile's dataset and write it, resized, "
        "with native-resolution labels and a manifest, atomically to --out.",
    )
    _add_params_arguments(parser)
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder, e.g. results/<profile>/prepared"
    )
    parser.add_argument(
        "--limit", type=int, help="keep the first N images per split (overrides the profile)"
    )
    parser.add_argument("--threads", type=_positive_int, help="torch CPU threads")
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
    _set_threads(args.threads)
    manifest = prepare(config, args.out)
    sizes = ", ".join(f"{name} {entry['size']}" for name, entry in manifest["splits"].items())
    h, w = manifest["resolution"]
    print(f"prepared {config.profile} ({config.dataset}): {sizes} at {h}x{w} -> {args.out}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text}")
    return value


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Execution settings (never science settings: those come only from params.yaml)."""
    parser.add_argument("--threads", type=_positive_int,
                        help="torch CPU threads (the pipeline passes the rule's threads)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"),
                        help="overrides train.device (auto: CUDA if available)")  # fmt: skip


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one head on the U-Net (resumes an interrupted run)",
        description="Train the U-Net with the chosen head on a prepared dataset, with settings "
        "from params.yaml (model:, train:, spectral:, evaluate:, data.augment and the profile's "
        "overrides). Writes checkpoint.pt, best.pt, history.csv, train_log.txt, snapshots/, "
        "dvclive/ and, last, final.json to --out. Rerunning resumes from the last checkpoint.",
    )
    _add_params_arguments(parser)
    parser.add_argument("--head", required=True, choices=head_names(), help="segmentation head")
    parser.add_argument("--seed", required=True, type=int, help="seed of this run")
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    _add_run_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from cheeger.training import RunSpec, train  # heavy (torchmetrics, matplotlib, DVCLive)

    params = load_params(args.params)
    origin, base = args.params.name, args.params.resolve().parent
    data = DataConfig.from_params(params, args.profile, base_dir=base, origin=origin)
    prepared_for = load_manifest(args.data).get("profile")
    if prepared_for is not None and prepared_for != data.profile:
        raise ParamsError(f"{args.data} was prepared for profile {prepared_for!r} but the active "
                          f"profile is {data.profile!r}; pass --profile {prepared_for} or the "
                          "matching data")  # fmt: skip
    if args.seed < 0:
        raise ParamsError(f"--seed: expected an int >= 0, got {args.seed}")
    _set_threads(args.threads)
    options = {name: head_options(params, name, args.profile, origin=origin)
               for name in head_names() if name in HEAD_OPTION_READERS}  # fmt: skip
    spec = RunSpec(
        data=args.data, out=args.out, head=args.head, seed=args.seed,
        model=ModelConfig.from_params(params, args.profile, origin=origin),
        train=TrainConfig.from_params(params, args.profile, origin=origin),
        loss=LossWeightsConfig.from_params(params, args.profile, origin=origin),
        evaluate=EvaluateConfig.from_params(params, args.profile, origin=origin),
        augment=data.augment,
        head_options=head_options(params, args.head, args.profile, origin=origin),
        compare_heads=options, device=args.device, progress=not args.no_progress,
        meta={"profile": data.profile, "params": str(args.params)},
    )  # fmt: skip
    final = train(spec)
    val = final["val"]
    print(f"trained {args.head} seed {args.seed} ({final['epochs']} epochs): val mIoU "
          f"{val['miou']}, boundary mIoU {val['boundary_miou']} -> {args.out}")  # fmt: skip
    return 0


def _add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="metrics of a finished run on a split",
        description="Evaluate a finished run (its best-on-val or last checkpoint, per "
        "evaluate.checkpoint) on a split at native label resolution: mIoU, per-class IoU, "
        "pixel and class-average accuracy, boundary IoU, fragment metrics; JSON to --out.",
    )
    _add_params_arguments(parser)
    parser.add_argument("--run", type=Path, required=True, help="finished run folder")
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    parser.add_argument("--split", default="test", help="split to evaluate (%(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON file")
    _add_run_arguments(parser)
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from cheeger.evaluate import evaluate_run, write_metrics

    params = load_params(args.params)
    config = EvaluateConfig.from_params(params, args.profile, origin=args.params.name)
    device = args.device or TrainConfig.from_params(params, args.profile,
                                                    origin=args.params.name).device  # fmt: skip
    _set_threads(args.threads)
    metrics = evaluate_run(args.run, args.data, args.split, config, device)
    write_metrics(args.out, metrics)
    print(f"evaluated {args.run} ({metrics['checkpoint']} checkpoint, epoch {metrics['epoch']}) "
          f"on {args.split}: mIoU {metrics['miou']}, boundary mIoU {metrics['boundary_miou']} "
          f"-> {args.out}")  # fmt: skip
    return 0


# --- the study around the runs (cheeger.study): variants, sweeps and the report ----------------


def _add_variant(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "variant",
        help="write a copy of params.yaml with keys changed (one ablation run's settings)",
        description="Write --out: the params file with each --set KEY=VALUE applied (in the "
        "shared section and in the profile's override of it, if any), the profile made active "
        "and relative paths rebased; checked like params.yaml. VALUE is JSON or a plain string.",
    )
    _add_params_arguments(parser)
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


def _add_gradients(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gradients",
        help="gradient stability sweep: ||dL/dA|| against the eigengap, exact and broadened",
        description="Differentiate eigsh on matrices with a planted eigenvalue pair of shrinking "
        "gap, with the exact (eps=0) and broadened backward (study.gradients); CSV to --out.",
    )
    _add_params_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="CSV file")
    parser.add_argument("--threads", type=_positive_int, help="torch CPU threads")
    parser.set_defaults(handler=_run_gradients)


def _run_gradients(args: argparse.Namespace) -> int:
    from cheeger.study.gradients import GradientsConfig, gradient_sweep, write_sweep

    params = load_params(args.params)
    config = GradientsConfig.from_params(params, args.profile, origin=args.params.name)
    _set_threads(args.threads)
    table = write_sweep(gradient_sweep(config), args.out)
    print(f"gradient sweep: {config.gaps} gaps x {len(config.eps)} eps x {len(config.pairs)} "
          f"pairs x {len(config.losses)} losses x {config.trials} trials -> {table}")  # fmt: skip
    return 0


def _add_broadening(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "broadening",
        help="gradient error of the broadened backward on image graphs, per eps and eps rule",
        description="Measure the head's broadened gradient against its exact closed form on "
        "8-neighbour colour graphs of the prepared images (study.broadening); CSV to --out.",
    )
    _add_params_arguments(parser)
    parser.add_argument("--prepared", type=Path, required=True, help="prepared data folder")
    parser.add_argument("--out", type=Path, required=True, help="CSV file")
    parser.add_argument("--threads", type=_positive_int, help="torch CPU threads")
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
    _set_threads(args.threads)
    images = prepared_images(args.prepared, config.split, config.frames)
    table = write_table(broadening_sweep(images, config), args.out)
    print(f"broadening: {len(images)} images x {len(config.sizes)} sizes x {len(config.rules)} "
          f"rules x {len(config.eps)} eps -> {table}")  # fmt: skip
    return 0


def _add_scaling(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scaling",
        help="eigensolver scaling sweep (benchmarks/eigensolvers.py) as JSON and a tidy CSV",
        description="Run the eigensolver benchmark with the sizes, k and solvers of "
        "study.scaling; write its JSON to --out and one row per (solver, n) to --table.",
    )
    _add_params_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="benchmark JSON file")
    parser.add_argument("--table", type=Path, required=True, help="tidy CSV for the report")
    parser.add_argument("--checkout", type=Path,
                        help="checkout holding benchmarks/ (default: this package's)")  # fmt: skip
    parser.add_argument("--threads", type=_positive_int, help="torch CPU threads")
    parser.set_defaults(handler=_run_scaling)


def _run_scaling(args: argparse.Namespace) -> int:
    from cheeger.study.scaling import ScalingConfig, run_scaling

    params = load_params(args.params)
    config = ScalingConfig.from_params(params, args.profile, origin=args.params.name,
                                       base_dir=args.params.resolve().parent)  # fmt: skip
    _set_threads(args.threads)  # this process only: the benchmark's own runs use scaling.threads
    table = run_scaling(config, args.out, args.table, root=args.checkout)
    print(f"eigensolver scaling: {len(table)} (solver, n) points -> {args.out}, {args.table}")
    return 0


def _add_report(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="the study's tables, figures, metrics.json and README.md",
        description="Aggregate every run, evaluation, ablation and sweep of the profile (mean, "
        "std and t intervals over seeds, Welch comparison of the heads) into --out: README.md, "
        "metrics.json, tables/ (CSV, Markdown, LaTeX) and figures/ (PNG, PDF); by default in "
        "the profile's folder, <results>/<profile>/.",
    )
    _add_params_arguments(parser)
    _add_results_argument(parser)
    parser.add_argument("--out", type=Path, default=None,
                        help="report folder (default: <results>/<profile>)")
    parser.add_argument("--no-figures", action="store_true", help="tables and text only")
    parser.add_argument("--no-panel", action="store_true", help="skip the qualitative panel")
    parser.add_argument("--threads", type=_positive_int, help="torch CPU threads")
    parser.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from cheeger.study.report import make_report

    _set_threads(args.threads)
    metrics = make_report(args.params, args.profile, results=args.results, out=args.out,
                          figures=not args.no_figures, panel=not args.no_panel)  # fmt: skip
    print(f"report of {metrics['profile']} ({metrics['split']} split, {metrics['seeds']} seeds) "
          f"-> {(args.out or args.results / metrics['profile']) / 'README.md'}")  # fmt: skip
    return 0


def _add_trial(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "trial",
        help="compare the trial (study.trial) with the study's heads",
        description="Read the trial runs' and the main runs' evaluations on the report split and "
        "write <results>/<profile>/trial/compare/<name>.{csv,md,tex} and summary.json: "
        "mean, std and t intervals over seeds, and the trial minus each head with Welch's "
        "interval and verdict (summary.json alone when the profile has no trial).",
    )
    _add_params_arguments(parser)
    _add_results_argument(parser)
    parser.set_defaults(handler=_run_trial)


def _run_trial(args: argparse.Namespace) -> int:
    from cheeger.study.trial import write_trial

    paths = write_trial(args.params, args.profile, results=args.results)
    print(f"trial comparison -> {paths.get('md', paths['summary'])}")
    return 0


def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    # the demos declare and handle their own arguments and errors (cheeger/demos/command.py)
    from cheeger.demos.command import add_demo_parser

    add_demo_parser(subparsers)


def _add_features(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "features",
        help="cache the frozen pretrained encoder's taps (resumes an interrupted run)",
        description="Compute the EfficientNet-Lite0 taps of every image of a prepared dataset "
        "(train also flipped), float16, one file per image and flip, atomically; a rerun "
        "computes only what is missing, and features.json marks a finished cache. The profile "
        "must use model.encoder: efficientnet_lite0 with freeze_encoder: true.",
    )
    _add_params_arguments(parser)
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="cache folder")
    parser.add_argument("--batch-size", type=_positive_int, default=8, help="images per pass")
    _add_run_arguments(parser)
    parser.set_defaults(handler=_run_features)


def _run_features(args: argparse.Namespace) -> int:
    from cheeger.features import compute_features
    from cheeger.training.runtime import resolve_device

    _set_threads(args.threads)
    params = load_params(args.params)
    model = ModelConfig.from_params(params, args.profile, origin=str(args.params))
    if model.encoder != "efficientnet_lite0" or not model.freeze_encoder:
        raise ParamsError(f"{args.params}: model.encoder: efficientnet_lite0 and "
                          "model.freeze_encoder: true expected for a feature cache, got "
                          f"{model.encoder!r} and {model.freeze_encoder}")  # fmt: skip
    device = resolve_device(args.device or "auto")
    compute_features(args.data, args.out, batch_size=args.batch_size, device=device)
    return 0


_SUBCOMMANDS = (
    _add_prepare, _add_train, _add_evaluate, _add_features,
    _add_variant, _add_gradients, _add_broadening, _add_scaling, _add_trial, _add_report, _add_demo,
)  # fmt: skip


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
