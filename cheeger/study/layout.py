"""Where every file of the study lives, shared by the ``Snakefile``, ``dvc.yaml`` and the report.

Paths are relative to the results folder (``results/`` in the pipeline) and written as
``str.format`` patterns whose fields are also the Snakemake wildcards, so a rule's output and
the report's input are the same string. Every file a profile produces, its report included,
sits under ``<profile>/``, so no profile's run ever writes another profile's files (``make
study`` builds ``results/embedded/`` beside the committed ``results/camvid/``). One folder per
DVC stage output (``prepared``, ``runs``, ``eval``, ``ablation``, ``trial/{runs,eval,compare}``,
``controls/{runs,eval}``, ``scaling``, ``gradients``, ``broadening``; the report's
``README.md``, ``metrics.json``, ``tables``, ``figures``): DVC outputs must not overlap.

A training run's folder (``RUN``) is not a declared output: its completion marker
(``RUN_DONE``, a copy of the run's ``final.json`` written after training) is. A killed job thus
leaves its checkpoints for ``cheeger train`` to resume, and a job Snakemake reruns because its
settings or code changed finds a finished run (with ``final.json``) and starts it afresh.

``FINGERPRINT`` records, for each job, the code and settings that made its outputs
(:mod:`cheeger.study.fingerprint`); it is an input of the job, rewritten when they change.

Example:
    >>> Layout("results").path(EVAL, profile="embedded", head="conv", seed=0, split="test")
    PosixPath('results/embedded/eval/conv/seed0/test.json')
    >>> Layout("results").path(METRICS, profile="camvid")
    PosixPath('results/camvid/metrics.json')
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
    "BROADENING",
    "CONTROL_DONE",
    "CONTROL_EVAL",
    "CONTROL_PARAMS",
    "CONTROL_RUN",
    "EVAL",
    "FEATURES",
    "FEATURES_DONE",
    "FIGURES",
    "FINGERPRINT",
    "FRESH_RUN",
    "GRADIENTS",
    "METRICS",
    "PREPARED",
    "README",
    "REPORT",
    "RUN",
    "RUN_DONE",
    "SCALING",
    "SCALING_TABLE",
    "STAGE_CODE",
    "TABLES",
    "TRIAL_DONE",
    "TRIAL_EVAL",
    "TRIAL_PARAMS",
    "TRIAL_RUN",
    "TRIAL_SUMMARY",
    "TRIAL_TABLE",
    "UNSUPERVISED",
    "UNSUPERVISED_DONE",
    "Layout",
    "StudyFileError",
]

PREPARED = "{profile}/prepared"
# The frozen encoder's cached taps (`cheeger features`; only profiles whose model.features is set,
# which must be this folder): the folder is cached by DVC, features.json (written last by
# cheeger.features.compute_features) is the Snakemake output, so an interrupted job leaves its
# finished files for the next attempt to keep.
FEATURES = "{profile}/features"
FEATURES_DONE = "{profile}/features/features.json"
RUN = "{profile}/runs/{head}/seed{seed}"
RUN_DONE = "{profile}/runs/{head}/seed{seed}.json"
EVAL = "{profile}/eval/{head}/seed{seed}/{split}.json"
ABLATION_RUN = "{profile}/ablation/runs/{axis}/{value}/seed{seed}"
ABLATION_PARAMS = "{profile}/ablation/runs/{axis}/{value}/seed{seed}.params.yaml"
ABLATION_DONE = "{profile}/ablation/runs/{axis}/{value}/seed{seed}.json"
ABLATION_EVAL = "{profile}/ablation/eval/{axis}/{value}/seed{seed}/{split}.json"
SCALING = "{profile}/scaling/eigensolvers.json"
SCALING_TABLE = "{profile}/scaling/eigensolvers.csv"
GRADIENTS = "{profile}/gradients/gradients.csv"
BROADENING = "{profile}/broadening/broadening.csv"
# The trial (study.trial): run folders (cached by DVC), evaluations and the comparison with the
# heads (committed): three folders, three DVC outputs.
TRIAL_RUN = "{profile}/trial/runs/{trial}/seed{seed}"
TRIAL_PARAMS = "{profile}/trial/runs/{trial}/seed{seed}.params.yaml"
TRIAL_DONE = "{profile}/trial/runs/{trial}/seed{seed}.json"
TRIAL_EVAL = "{profile}/trial/eval/{trial}/seed{seed}/{split}.json"
TRIAL_TABLE = "{profile}/trial/compare/{trial}"  # + .csv, .md, .tex
TRIAL_SUMMARY = "{profile}/trial/compare/summary.json"  # written with or without a trial
# The controls (study.controls): run folders (cached by DVC) and evaluations (committed): two
# folders, two DVC outputs; the report tables them beside the heads.
CONTROL_RUN = "{profile}/controls/runs/{control}/seed{seed}"
CONTROL_PARAMS = "{profile}/controls/runs/{control}/seed{seed}.params.yaml"
CONTROL_DONE = "{profile}/controls/runs/{control}/seed{seed}.json"
CONTROL_EVAL = "{profile}/controls/eval/{control}/seed{seed}/{split}.json"
# Unsupervised segmentation on the feature cache (`cheeger unsupervised`, profiles with
# model.features): the JSON (written last, atomically) and its figures, committed.
UNSUPERVISED = "{profile}/unsupervised"
UNSUPERVISED_DONE = "{profile}/unsupervised/unsupervised.json"
# The report (cheeger report): its folder and the four outputs DVC tracks in it.
REPORT = "{profile}"
README = "{profile}/README.md"
METRICS = "{profile}/metrics.json"
TABLES = "{profile}/tables"
FIGURES = "{profile}/figures"
# A job's fingerprint: {job} is the rule's name and its wildcards ("train_run/conv/0"). The
# folder's name sorts before every other one of the profile (a checkout writes it first).
FINGERPRINT = "{profile}/.fingerprints/{job}.json"
# The shell that precedes `cheeger train` in every training rule (params.run: the run folder,
# input.fingerprint: the job's fingerprint): the folder is kept, and resumed, only if it is
# unfinished and was begun under this fingerprint (its copy, the folder's fingerprint.json); a
# finished run, or one begun by other code or settings, is removed. A run's identity check
# covers settings, not code: without this a run killed before a code change resumed under the
# new code. (Not "test the declared output": Snakemake deletes it before the job runs.)
FRESH_RUN = (
    "((test ! -f {params.run}/final.json && cmp -s {input.fingerprint} "
    "{params.run}/fingerprint.json) || rm -rf {params.run}) && mkdir -p {params.run} && "
    "cp {input.fingerprint} {params.run}/fingerprint.json && "
)

# Every job runs through the CLI (cheeger/cli.py, the shared parts of cheeger/commands and the
# stage's own command module) and reads its settings with cheeger/config: a change there reruns
# the jobs that run it.
_CLI_CODE = ("cheeger/cli.py", "cheeger/commands/__init__.py", "cheeger/commands/arguments.py",
             "cheeger/config")  # fmt: skip
_DATA_COMMANDS = "cheeger/commands/data.py"
_TRAINING_COMMANDS = "cheeger/commands/training.py"
_STUDY_COMMANDS = "cheeger/commands/study.py"  # variant (ablation, controls), sweeps, report
_TRAINING_CODE = (*_CLI_CODE, _TRAINING_COMMANDS, "cheeger/data", "cheeger/features",
                  "cheeger/graph", "cheeger/heads", "cheeger/linalg", "cheeger/losses",
                  "cheeger/metrics", "cheeger/models", "cheeger/spectral",
                  "cheeger/training")  # fmt: skip

#: The package code (paths in the checkout) each kind of job runs: the Snakefile digests it into
#: those jobs' fingerprints (cheeger.study.fingerprint), so a change of its code reruns them
#: (Snakemake tracks only the rules' own code), and dvc.yaml lists the same paths as the deps of
#: the stage of the same name.
STAGE_CODE: dict[str, tuple[str, ...]] = {
    "data": (*_CLI_CODE, _DATA_COMMANDS, "cheeger/data"),
    "train": _TRAINING_CODE,
    "features": (*_CLI_CODE, _DATA_COMMANDS, "cheeger/data", "cheeger/features", "cheeger/models"),
    # evaluation rebuilds the run's model and runs its head's forward in eval mode (a path of
    # its own: cheeger/heads, graph, linalg, spectral) and reads the cache through
    # cheeger.training: the training code, not only cheeger/models (whose heads live apart)
    "evaluate": (*_TRAINING_CODE, "cheeger/evaluate.py"),
    "ablation": (*_TRAINING_CODE, _STUDY_COMMANDS, "cheeger/evaluate.py",
                 "cheeger/study/variants.py"),
    # the benchmark files the sweep runs, not the folder: heads.py is run by hand
    "scaling": (
        *_CLI_CODE,
        _STUDY_COMMANDS,
        "benchmarks/__init__.py",
        "benchmarks/eigensolvers.py",
        "benchmarks/graphs.py",
        "cheeger/graph",
        "cheeger/linalg",
        "cheeger/study/broadening.py",
        "cheeger/study/scaling.py",
    ),
    "gradients": (*_CLI_CODE, _STUDY_COMMANDS, "cheeger/linalg", "cheeger/study/gradients.py"),
    "broadening": (
        *_CLI_CODE,
        _STUDY_COMMANDS,
        "cheeger/data",
        "cheeger/graph",
        "cheeger/linalg",
        "cheeger/study/broadening.py",
    ),
    # runs as the ablation's, evaluations as evaluate's, the comparison table as the report's
    "trial": (*_TRAINING_CODE, _STUDY_COMMANDS, "cheeger/evaluate.py", "cheeger/study"),
    # runs as the ablation's, evaluations as evaluate's (the report tables them)
    "controls": (*_TRAINING_CODE, _STUDY_COMMANDS, "cheeger/evaluate.py",
                 "cheeger/study/variants.py"),
    "unsupervised": (
        *_CLI_CODE,
        "cheeger/data",
        "cheeger/features",
        "cheeger/graph",
        "cheeger/linalg",
        "cheeger/losses/neuralef.py",
        "cheeger/metrics",
        "cheeger/unsupervised",
    ),
    "report": (*_CLI_CODE, _STUDY_COMMANDS, "cheeger/study"),
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
