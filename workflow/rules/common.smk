# Shared set-up of the study rules: the validated settings, the study's shape and its paths.
#
# params.yaml is the only source of science settings. It is checked twice, with the same schema
# (workflow/schemas/params.schema.yaml): by cheeger.config.load_params, which names the offending
# key exactly as the CLI does, and by Snakemake's `validate`. `--config` / `--configfile`
# overrides of settings are refused (the jobs read params.yaml, so an override would silently not
# reach them); only `--config profile=NAME`, which chooses a profile block, is allowed.
# The `params` of each job list the settings its command reads, so Snakemake reruns the job
# when they change (the same keys DVC watches in dvc.yaml).
#
# Each job also reads its fingerprint (`fingerprint_file(...)` below), the record of its code and
# settings (cheeger.study.fingerprint), rewritten as the DAG is built when, and only when, the
# record changed: then it is newer than the job's outputs and the job reruns. This needs no
# Snakemake metadata, which a fresh clone has not, and works when every file has the clone's
# mtime. Comments and formatting of Python code do not change a record. The code files are not
# inputs of their own: by their mtime an edited comment would rerun every job reading the file
# (the fingerprint is what says whether the code changed).

import json
import os
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from cheeger.config import ModelConfig, ParamsError, head_options, load_params
from cheeger.study import layout as L
from cheeger.study.config import StudyConfig, deep_merge, study_section
from cheeger.study.fingerprint import job_fingerprint, update_fingerprint

PARAMS = "params.yaml"
RESULTS = "results"
ENV = "../envs/cheeger.yaml"

# Jobs call the `cheeger` of the interpreter running Snakemake (the project's .venv), whatever
# the caller's PATH, so the pipeline and its jobs always use the same installation.
shell.prefix(f"set -euo pipefail; export PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH; ")

try:
    _PARAMS_FILE = load_params(PARAMS)
except ParamsError as error:
    raise WorkflowError(f"invalid settings: {error}") from None
# `--config profile=NAME` may choose which profile block runs (what `make study` does for the
# embedded one): it selects settings, it sets none, and every job gets `--profile NAME`.
_CHANGED = sorted(k for k in config.keys() | _PARAMS_FILE.keys()
                  if k != "profile" and config.get(k) != _PARAMS_FILE.get(k))
if _CHANGED:
    raise WorkflowError(
        f"the configuration differs from {PARAMS} in {_CHANGED}: settings come from {PARAMS} "
        "only (the jobs read it); edit it, or use `dvc exp run -S key=value`, instead of "
        "--config / --configfile (only `--config profile=NAME` is allowed)"
    )
validate(config, "../schemas/params.schema.yaml", set_default=False)
try:
    STUDY = StudyConfig.from_params(config)
except ParamsError as error:
    raise WorkflowError(f"invalid settings: {error}") from None

PROFILE = STUDY.profile
PROFILE_BLOCK = config["profiles"][PROFILE]
THREADS = STUDY.threads
HEADS_RE = "|".join(STUDY.heads)


def path(template):
    """A layout template under results/ for the active profile, other fields left as wildcards."""
    return str(Path(RESULTS) / template.replace("{profile}", PROFILE))


def log(name):
    return f"logs/{PROFILE}/{name}.log"


def section(name):
    """Shared section `name` deep-merged with the active profile's override of it."""
    return deep_merge(config.get(name), PROFILE_BLOCK.get(name))


# What each kind of job reads from params.yaml (its rule's `params:`). Training settings follow
# the run identity of cheeger.training (device and data workers do not change what is trained).
_TRAIN = {k: v for k, v in section("train").items() if k not in ("device", "num_workers")}
_TRAIN.update({k: PROFILE_BLOCK[k] for k in ("epochs",) if k in PROFILE_BLOCK})
_SPECTRAL = section("spectral")
_LOSS = {k: v for k, v in _SPECTRAL.items() if k != "head"}
# The conv head reports no Rayleigh or bulk term: only the connectivity weight reaches it; only
# the neuralef head reports the NeuralEF term.
_HEAD_LOSS_KEYS = {
    "conv": ("gamma",),
    "spectral": tuple(k for k in _LOSS if k != "neuralef_weight"),
}
PREPARE_SETTINGS = {
    "profile": {k: v for k, v in PROFILE_BLOCK.items()
                if k in ("dataset", "root", "resolution", "splits", "limit")},
    "data": {k: v for k, v in config.get("data", {}).items() if k != "augment"},
}
EVALUATE_SETTINGS = section("evaluate")

# The frozen encoder's feature cache: only a profile whose model.features is set (the config
# allows it only with efficientnet_lite0 and freeze_encoder) has a cache job, and its training
# jobs read the cache. The folder is the layout's (L.FEATURES): params.yaml must name that one,
# since the jobs read it from there, so a hand-written other path is refused here.
MODEL = ModelConfig.from_params(config, PROFILE, origin=PARAMS)
FEATURES = path(L.FEATURES)
if MODEL.features is not None and os.path.normpath(MODEL.features) != FEATURES:
    raise WorkflowError(
        f"invalid settings: {PARAMS}: profiles.{PROFILE}.model.features: expected {FEATURES!r} "
        f"(the layout's cache folder, cheeger/study/layout.py FEATURES), got {MODEL.features!r}"
    )
# the marker of a finished cache, as a list: empty (no input, no job) without a cache
FEATURES_DONE = [path(L.FEATURES_DONE)] if MODEL.features is not None else []
FEATURES_SETTINGS = {"model": {"encoder": MODEL.encoder, "freeze_encoder": MODEL.freeze_encoder},
                     "prepare": PREPARE_SETTINGS}
# Unsupervised segmentation reads the cache: only profiles with one; the report reads its JSON.
UNSUPERVISED_DONE = [path(L.UNSUPERVISED_DONE)] if MODEL.features is not None else []
UNSUPERVISED_SETTINGS = {"unsupervised": section("unsupervised"), "features": FEATURES_SETTINGS}
STUDY_SETTINGS = study_section(config)


def code(stage):
    """The Python files of the code of `stage` (L.STAGE_CODE), in this Snakefile's checkout."""
    files = []
    for entry in L.STAGE_CODE[stage]:
        root = Path(workflow.basedir) / entry
        found = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        files += [os.path.relpath(p) for p in found]
    return files


def fingerprint_file(name, stage, settings):
    """Input function giving the fingerprint file of each job of the rule called `name`, from
    the code of `stage` (L.STAGE_CODE) and `settings`, a value or a function of the wildcards
    (the rule's params.settings)."""

    def inputs(wildcards):
        job = "/".join([name, *map(str, wildcards)])
        value = settings(wildcards) if callable(settings) else settings
        target = path(L.FINGERPRINT).format(job=job)
        update_fingerprint(target, job_fingerprint(job, value, code(stage), workflow.basedir))
        return target

    return inputs


def run_settings(head):
    """The settings a training run of `head` depends on."""
    keys = _HEAD_LOSS_KEYS.get(head)
    loss = _LOSS if keys is None else {k: _LOSS.get(k) for k in keys}
    return {
        "head": head,
        "head_options": head_options(config, head, PROFILE),
        "model": section("model"),
        "train": _TRAIN,
        "loss": loss,
        "evaluate": {k: v for k, v in EVALUATE_SETTINGS.items() if k != "checkpoint"},
        "augment": config.get("data", {}).get("augment", {}),
    }


# The settings of the jobs of each rule that are not a plain section (their params.settings).
def train_settings(wildcards):
    return run_settings(wildcards.head)


def ablation_settings(wildcards):
    return {
        "base": run_settings(STUDY.ablation_head),
        "set": STUDY.axis(wildcards.axis).settings(wildcards.value),
    }


def trial_settings(wildcards):
    return {"base": run_settings(STUDY.trial.head), "set": dict(STUDY.trial.settings)}


def control_settings(wildcards):
    control = STUDY.control(wildcards.control)
    return {"base": run_settings(control.head), "set": dict(control.settings)}


def other_reports():
    """The committed reports (metrics.json) of the other profiles of this profile's dataset:
    the report puts their protocols beside this one (cheeger.study.protocols)."""
    dataset, found = PROFILE_BLOCK.get("dataset"), []
    for name, block in config["profiles"].items():
        metrics_file = Path(RESULTS) / L.METRICS.format(profile=name)
        if name != PROFILE and block.get("dataset") == dataset and metrics_file.is_file():
            found.append(str(metrics_file))
    return found


TRIAL_COMPARE_SETTINGS = {k: STUDY_SETTINGS.get(k) for k in ("trial", "report")}


def set_arguments(settings):
    """The `--set` arguments of `cheeger variant` for {key: value} settings (shell-quoted)."""
    return " ".join(f"--set {shlex.quote(f'{key}={json.dumps(v)}')}" for key, v in settings.items())


# `cheeger train` of a main run (rule train_run)
TRAIN_RUN = "".join((
    L.FRESH_RUN,
    "cheeger train --params {params.params_file} --profile {params.profile} "
    "--head {wildcards.head} --seed {wildcards.seed} --data {input.data} --out {params.run} "
    "--threads {threads} --no-progress > {log} 2>&1 && cp {params.run}/final.json {output.done}",
))

# A run on a params variant (an ablation value, the trial, a control) and its evaluation: the same commands
# for both, from each rule's `params.set`, `params.head`, `params.run` and output paths.
VARIANT_RUN = "".join((
    "cheeger variant --params {params.params_file} --profile {params.profile} {params.set} "
    "--out {output.params} > {log} 2>&1 && ", L.FRESH_RUN,
    "cheeger train --params {output.params} --profile {params.profile} --head {params.head} "
    "--seed {wildcards.seed} --data {input.data} --out {params.run} --threads {threads} "
    "--no-progress >> {log} 2>&1 && "
    "cp {params.run}/final.json {output.done}"
))
VARIANT_EVALUATE = (
    "cheeger evaluate --params {input.params} --profile {params.profile} --run {params.run} "
    "--data {input.data} --split {wildcards.split} --out {output} --threads {threads} "
    "> {log} 2>&1"
)


# Every file each stage produces: the inputs of the target rules and of the report.
RUN_DONE = [path(L.RUN_DONE).format(head=h, seed=s) for h, s in STUDY.runs()]
EVALUATIONS = [path(L.EVAL).format(head=h, seed=s, split=split)
               for h, s, split in STUDY.evaluations()]
ABLATION_DONE = [path(L.ABLATION_DONE).format(axis=a, value=v, seed=s)
                 for a, v, s in STUDY.ablation_runs()]
ABLATION_EVALUATIONS = [path(L.ABLATION_EVAL).format(axis=a, value=v, seed=s,
                                                     split=STUDY.ablation_split)
                        for a, v, s in STUDY.ablation_runs()]
CONTROL_DONE = [path(L.CONTROL_DONE).format(control=c, seed=s) for c, s in STUDY.control_runs()]
CONTROL_EVALUATIONS = [path(L.CONTROL_EVAL).format(control=c, seed=s, split=STUDY.report_split)
                       for c, s in STUDY.control_runs()]
# the controls stage's two DVC outputs: the folders above {control} of runs and evaluations
CONTROL_FOLDERS = [str(Path(path(t[: t.index("{control}")]))) for t in (L.CONTROL_RUN, L.CONTROL_EVAL)]
TRIAL_EVALUATIONS = [path(L.TRIAL_EVAL).format(trial=t, seed=s, split=STUDY.report_split)
                     for t, s in STUDY.trial_runs()]
# what the trial is compared with: every main run on the report split (none without a trial)
TRIAL_BASELINES = ([path(L.EVAL).format(head=h, seed=s, split=STUDY.report_split)
                    for h, s in STUDY.runs()] if STUDY.trial is not None else [])
TRIAL_TABLES = ([f"{path(L.TRIAL_TABLE).format(trial=STUDY.trial.name)}{ext}"
                 for ext in (".csv", ".md", ".tex")] if STUDY.trial is not None else [])
