"""``cheeger unsupervised``: argument parsing and the handler.

:func:`add_parser` registers the subcommand on the ``cheeger`` parser (``cheeger.cli`` calls it);
the handler reads ``params.yaml``'s ``unsupervised:`` section for the profile
(:class:`~cheeger.unsupervised.config.UnsupervisedConfig`) and runs
:func:`~cheeger.unsupervised.run.run_unsupervised`.

Example:
    $ cheeger unsupervised --profile camvid_lite0 --features results/camvid_lite0/features \\
          --data results/camvid_lite0/prepared --out results/camvid_lite0/unsupervised --threads 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run_command"]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``cheeger unsupervised`` on the top-level subparsers; returns its parser."""
    parser = subparsers.add_parser(
        "unsupervised",
        help="unsupervised segmentation on the frozen features: k-means, eigsh, NeuralEF",
        description="Fit k-means, the per-image eigensolver route (DSM) and NeuralEF on the "
        "train split of a feature cache, score them on test (Hungarian matching for K = C, "
        "majority vote for K > C; mIoU, pixel accuracy, boundary mIoU, seconds per image) and "
        "write <out>/unsupervised.json with figures, atomically. Settings: params.yaml "
        "unsupervised: (and profiles.<name>.unsupervised:).",
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="params file (%(default)s)")  # fmt: skip
    parser.add_argument("--profile", help="profile under profiles: (default: `profile:`)")
    parser.add_argument("--features", type=Path, required=True, help="finished feature cache")
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--threads", type=_positive, help="torch CPU threads")
    parser.set_defaults(handler=run_command)
    return parser


def run_command(args: argparse.Namespace) -> int:
    """Handler of ``cheeger unsupervised``; returns the exit status."""
    import torch

    from cheeger.config import load_params
    from cheeger.unsupervised.config import UnsupervisedConfig
    from cheeger.unsupervised.run import run_unsupervised

    if args.threads:
        torch.set_num_threads(args.threads)
    params = load_params(args.params)
    cfg = UnsupervisedConfig.from_params(params, args.profile, origin=str(args.params))
    run_unsupervised(cfg, args.features, args.data, args.out,
                     log=lambda line: print(line, flush=True))  # fmt: skip
    return 0
