"""Where every file of the study lives, shared by the ``Snakefile`` and the report.

Paths are relative to the results folder (``results/`` in the pipeline) and written as
``str.format`` patterns whose fields are also the Snakemake wildcards, so a rule's output and
the report's input are the same string. Everything a profile produces before the report sits
under a folder named for the profile, so switching profiles never overwrites another profile's
runs. One folder per DVC stage (``prepared``, ``runs``, ``eval``, ``ablation``, ``trial``,
``scaling``, ``gradients``): DVC outputs must not overlap.

A training run's folder (``RUN``) is not a declared output: its completion marker
(``RUN_DONE``, a copy of the run's ``final.json`` written after training) is. A killed job thus
leaves its checkpoints for ``cheeger train`` to resume, and a job Snakemake reruns because its
settings or code changed finds a finished run (with ``final.json``) and starts it afresh.

Example:
    >>> Layout("results").path(EVAL, profile="embedded", head="conv", seed=0, split="test")
    PosixPath('results/eval/embedded/conv/seed0/test.json')
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ABLATION_DONE",
    "ABLATION_EVAL",
    "ABLATION_PARAMS",
    "ABLATION_RUN",
    "EVAL",
    "GRADIENTS",
    "PREPARED",
    "RUN",
    "RUN_DONE",
    "SCALING",
    "SCALING_TABLE",
    "STAGE_CODE",
    "TRIAL_DONE",
    "TRIAL_EVAL",
    "TRIAL_PARAMS",
    "TRIAL_RUN",
    "TRIAL_SUMMARY",
    "TRIAL_TABLE",
    "Layout",
    "StudyFileError",
]

PREPARED = "prepared/{profile}"
RUN = "runs/{profile}/{head}/seed{seed}"
RUN_DONE = "runs/{profile}/{head}/seed{seed}.json"
EVAL = "eval/{profile}/{head}/seed{seed}/{split}.json"
ABLATION_RUN = "ablation/{profile}/runs/{axis}/{value}/seed{seed}"
ABLATION_PARAMS = "ablation/{profile}/runs/{axis}/{value}/seed{seed}.params.yaml"
ABLATION_DONE = "ablation/{profile}/runs/{axis}/{value}/seed{seed}.json"
ABLATION_EVAL = "ablation/{profile}/eval/{axis}/{value}/seed{seed}/{split}.json"
SCALING = "scaling/{profile}/eigensolvers.json"
SCALING_TABLE = "scaling/{profile}/eigensolvers.csv"
GRADIENTS = "gradients/{profile}/gradients.csv"
# The trial (study.trial): run folders (cached by DVC), evaluations and the comparison with the
# heads (committed): three folders, three DVC outputs.
TRIAL_RUN = "trial/{profile}/runs/{trial}/seed{seed}"
TRIAL_PARAMS = "trial/{profile}/runs/{trial}/seed{seed}.params.yaml"
TRIAL_DONE = "trial/{profile}/runs/{trial}/seed{seed}.json"
TRIAL_EVAL = "trial/{profile}/eval/{trial}/seed{seed}/{split}.json"
TRIAL_TABLE = "trial/{profile}/compare/{trial}"  # + .csv, .md, .tex
TRIAL_SUMMARY = "trial/{profile}/compare/summary.json"  # written with or without a trial

_TRAINING_CODE = ("cheeger/data", "cheeger/graph", "cheeger/heads", "cheeger/linalg",
                  "cheeger/losses", "cheeger/metrics", "cheeger/models", "cheeger/spectral",
                  "cheeger/training")  # fmt: skip

#: The package code (paths in the checkout) each kind of job runs: the Snakefile makes it an
#: input of those jobs, so editing it reruns them (Snakemake tracks only the rules' own code),
#: and dvc.yaml lists the same paths as the deps of the stage of the same name.
STAGE_CODE: dict[str, tuple[str, ...]] = {
    "data": ("cheeger/data",),
    "train": _TRAINING_CODE,
    "evaluate": ("cheeger/evaluate.py", "cheeger/metrics"),
    "ablation": (*_TRAINING_CODE, "cheeger/evaluate.py", "cheeger/study/variants.py"),
    # the benchmark files the sweep runs, not the folder: heads.py is run by hand
    "scaling": (
        "benchmarks/__init__.py",
        "benchmarks/eigensolvers.py",
        "benchmarks/graphs.py",
        "cheeger/graph",
        "cheeger/linalg",
        "cheeger/study/scaling.py",
    ),
    "gradients": ("cheeger/linalg", "cheeger/study/gradients.py"),
    # runs as the ablation's, evaluations as evaluate's, the comparison table as the report's
    "trial": (*_TRAINING_CODE, "cheeger/evaluate.py", "cheeger/study"),
    "report": ("cheeger/study",),
}


class StudyFileError(FileNotFoundError):
    """A file the study declared is missing or unreadable (the path is named)."""


@dataclass(frozen=True)
class Layout:
    """The study's files under ``root``.

    Attributes:
        root: the results folder.
    """

    root: Path

    def __init__(self, root: str | os.PathLike = "results") -> None:
        object.__setattr__(self, "root", Path(root))

    def pattern(self, template: str) -> str:
        """``template`` under ``root``, fields left as Snakemake wildcards."""
        return str(self.root / template)

    def path(self, template: str, **fields: object) -> Path:
        """``template`` under ``root`` with its fields filled in.

        Raises:
            KeyError: a field of the template is missing.
        """
        return self.root / template.format(**fields)
