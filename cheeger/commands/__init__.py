"""The ``cheeger`` subcommands of the pipeline stages, one ``add_<name>(subparsers)`` each.

Each ``add_<name>`` declares its subcommand's arguments and sets ``handler``; the handler loads
its settings from ``params.yaml`` and calls the package. :data:`cheeger.cli.COMMANDS` names
them; ``cheeger`` imports only the module of the subcommand being run, so these modules import
nothing heavy (torch, the data or training packages) before their handler runs. This package's
``__init__`` re-exports only the shared argument helpers (stdlib only).

Example:
    >>> import argparse
    >>> from cheeger.commands.data import add_prepare
    >>> parser = argparse.ArgumentParser(prog="cheeger")
    >>> add_prepare(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["prepare", "--out", "p"]).handler.__name__
    '_run_prepare'
"""

from cheeger.commands.arguments import (
    add_params_arguments,
    add_results_argument,
    add_run_arguments,
    positive_int,
    set_threads,
)

__all__ = [
    "add_params_arguments",
    "add_results_argument",
    "add_run_arguments",
    "positive_int",
    "set_threads",
]
