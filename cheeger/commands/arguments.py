"""Arguments and settings shared by the ``cheeger`` subcommands (stdlib only: cheap to import).

Every subcommand reads its science settings from ``params.yaml`` (``--params``, ``--profile``);
the command line holds only execution settings (``--threads``, ``--device``) and paths.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_params_arguments(parser)
    >>> add_run_arguments(parser)
    >>> args = parser.parse_args(["--threads", "2"])
    >>> str(args.params), args.profile, args.threads, args.device
    ('params.yaml', None, 2, None)
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = [
    "add_params_arguments",
    "add_results_argument",
    "add_run_arguments",
    "positive_int",
    "set_threads",
]


def add_params_arguments(parser: argparse.ArgumentParser) -> None:
    """``--params`` (default ``params.yaml``) and ``--profile`` (default: its ``profile:``)."""
    parser.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="params file (%(default)s)"
    )
    parser.add_argument("--profile", help="profile under profiles: (default: `profile:`)")


def add_results_argument(parser: argparse.ArgumentParser) -> None:
    """``--results``: the folder holding the study's outputs (default ``results``)."""
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="folder holding the study's outputs (%(default)s)")  # fmt: skip


def positive_int(text: str) -> int:
    """An ``argparse`` type: an int >= 1 (a usage error, exit status 2, otherwise)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text}")
    return value


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Execution settings (never science settings: those come only from params.yaml)."""
    parser.add_argument("--threads", type=positive_int,
                        help="torch CPU threads (the pipeline passes the rule's threads)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"),
                        help="overrides train.device (auto: CUDA if available)")  # fmt: skip


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` unless ``threads`` is ``None`` (torch imported then)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
