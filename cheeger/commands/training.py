"""``cheeger train`` and ``cheeger evaluate``: one run of a head, and its metrics on a split.

Example:
    $ cheeger train --head spectral --seed 0 --data prepared --out runs/spectral/seed0
    $ cheeger evaluate --run runs/spectral/seed0 --data prepared --split test --out test.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cheeger.commands.arguments import add_params_arguments, add_run_arguments, set_threads
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

__all__ = ["add_evaluate", "add_train"]


def add_train(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``cheeger train`` (its ``--head`` choices are the registered heads)."""
    from cheeger.heads import head_names  # torch: paid by `cheeger train` only

    parser = subparsers.add_parser(
        "train",
        description="Train the U-Net with the chosen head on a prepared dataset, with settings "
        "from params.yaml (model:, train:, spectral:, evaluate:, data.augment and the profile's "
        "overrides). Writes checkpoint.pt, best.pt, history.csv, train_log.txt, snapshots/, "
        "dvclive/ and, last, final.json to --out. Rerunning resumes from the last checkpoint.",
    )
    add_params_arguments(parser)
    parser.add_argument("--head", required=True, choices=head_names(), help="segmentation head")
    parser.add_argument("--seed", required=True, type=int, help="seed of this run")
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    add_run_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    """Train (or resume) one run; print its validation scores."""
    from cheeger.data import load_manifest
    from cheeger.heads import head_names
    from cheeger.study.config import DEFAULT_HEADS, study_section
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
    set_threads(args.threads)
    # parity is checked among the heads the profile's study compares (not every registered one)
    compared = study_section(params, args.profile, origin=origin).get("heads", DEFAULT_HEADS)
    options = {name: head_options(params, name, args.profile, origin=origin)
               for name in head_names() if name in HEAD_OPTION_READERS
               and (name in compared or name == args.head)}  # fmt: skip
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


def add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``cheeger evaluate``."""
    parser = subparsers.add_parser(
        "evaluate",
        description="Evaluate a finished run (its best-on-val or last checkpoint, per "
        "evaluate.checkpoint) on a split at native label resolution: mIoU, per-class IoU, "
        "pixel and class-average accuracy, boundary IoU, fragment metrics; JSON to --out.",
    )
    add_params_arguments(parser)
    parser.add_argument("--run", type=Path, required=True, help="finished run folder")
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    parser.add_argument("--split", default="test", help="split to evaluate (%(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON file")
    add_run_arguments(parser)
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    """Score a finished run on a split; write the metrics JSON."""
    from cheeger.evaluate import evaluate_run, write_metrics

    params = load_params(args.params)
    config = EvaluateConfig.from_params(params, args.profile, origin=args.params.name)
    device = args.device or TrainConfig.from_params(params, args.profile,
                                                    origin=args.params.name).device  # fmt: skip
    set_threads(args.threads)
    metrics = evaluate_run(args.run, args.data, args.split, config, device)
    write_metrics(args.out, metrics)
    print(f"evaluated {args.run} ({metrics['checkpoint']} checkpoint, epoch {metrics['epoch']}) "
          f"on {args.split}: mIoU {metrics['miou']}, boundary mIoU {metrics['boundary_miou']} "
          f"-> {args.out}")  # fmt: skip
    return 0
