"""``cheeger prepare`` and ``cheeger features``: the dataset and the frozen encoder's cache.

Example:
    $ cheeger prepare --params params.yaml --profile embedded --out results/embedded/prepared
    $ cheeger features --profile camvid_lite0 --data prepared --out features --threads 1
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from cheeger.commands.arguments import (
    add_params_arguments,
    add_run_arguments,
    positive_int,
    set_threads,
)
from cheeger.config import DataConfig, ModelConfig, ParamsError, load_params

__all__ = ["add_features", "add_prepare"]


def add_prepare(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``cheeger prepare``."""
    parser = subparsers.add_parser(
        "prepare",
        description="Generate, read or download the profile's dataset and write it, resized, "
        "with native-resolution labels and a manifest, atomically to --out.",
    )
    add_params_arguments(parser)
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder, e.g. results/<profile>/prepared"
    )
    parser.add_argument(
        "--limit", type=int, help="keep the first N images per split (overrides the profile)"
    )
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads")
    parser.set_defaults(handler=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    """Write the prepared dataset; print one summary line."""
    from cheeger.data import prepare  # torch

    params = load_params(args.params)
    config = DataConfig.from_params(
        params, args.profile, base_dir=args.params.resolve().parent, origin=args.params.name
    )
    if args.limit is not None:
        if args.limit < 1:
            raise ParamsError(f"--limit: expected a positive int, got {args.limit}")
        config = replace(config, limit=args.limit)
    set_threads(args.threads)
    manifest = prepare(config, args.out)
    sizes = ", ".join(f"{name} {entry['size']}" for name, entry in manifest["splits"].items())
    h, w = manifest["resolution"]
    print(f"prepared {config.profile} ({config.dataset}): {sizes} at {h}x{w} -> {args.out}")
    return 0


def add_features(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``cheeger features``."""
    parser = subparsers.add_parser(
        "features",
        description="Compute the EfficientNet-Lite0 taps of every image of a prepared dataset "
        "(train also flipped), float16, one file per image and flip, atomically; a rerun "
        "computes only what is missing, and features.json marks a finished cache. The profile "
        "must use model.encoder: efficientnet_lite0 with freeze_encoder: true.",
    )
    add_params_arguments(parser)
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="cache folder")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="images per pass")
    parser.add_argument("--replace", action="store_true",
                        help="delete and rebuild a cache of other settings (data, weights, "
                        "input normalisation, code) in --out instead of refusing it")  # fmt: skip
    add_run_arguments(parser)
    parser.set_defaults(handler=_run_features)


def _run_features(args: argparse.Namespace) -> int:
    """Fill the feature cache (resuming a partial one)."""
    from cheeger.features import compute_features
    from cheeger.training.runtime import resolve_device

    set_threads(args.threads)
    params = load_params(args.params)
    model = ModelConfig.from_params(params, args.profile, origin=str(args.params))
    if model.encoder != "efficientnet_lite0" or not model.freeze_encoder:
        raise ParamsError(f"{args.params}: model.encoder: efficientnet_lite0 and "
                          "model.freeze_encoder: true expected for a feature cache, got "
                          f"{model.encoder!r} and {model.freeze_encoder}")  # fmt: skip
    device = resolve_device(args.device or "auto")
    compute_features(args.data, args.out, batch_size=args.batch_size, device=device,
                     replace=args.replace)  # fmt: skip
    return 0
