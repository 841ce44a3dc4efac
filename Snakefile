# The cheeger study: prepare -> features (a frozen encoder's cached taps, profiles with
# model.features only) -> train {head} x {seed} -> evaluate -> ablations of the spectral head,
# the trial (study.trial), the controls (study.controls), unsupervised segmentation (profiles
# with a feature cache), eigensolver scaling and gradient
# stability sweeps -> report (tables, figures, metrics.json and README.md), every file of a
# profile in results/<profile>/ (cheeger/study/layout.py). Each job also reads its fingerprint
# (workflow/rules/common.smk).
#
#   snakemake --cores all --workflow-profile workflow/profiles/local     (what `make study` runs)
#   SNAKEMAKE_PROFILE=workflow/profiles/slurm snakemake                   (a SLURM cluster)
#   dvc repro                                                            (the same, as DVC stages)
#
# Settings come only from params.yaml (`profile:` chooses the dataset set-up); the rules are thin
# calls of the `cheeger` CLI. `rule all` stays here: a default target in an included file is
# ignored.

from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/ablation.smk"
include: "workflow/rules/trial.smk"
include: "workflow/rules/controls.smk"
include: "workflow/rules/unsupervised.smk"
include: "workflow/rules/sweeps.smk"
include: "workflow/rules/report.smk"


wildcard_constraints:
    head=HEADS_RE,
    seed=r"\d+",
    split=r"[a-z]+",
    axis=r"[a-z][a-z0-9_]*",
    value=r"[A-Za-z0-9_.+-]+",
    trial=r"[a-z][a-z0-9_]*",
    control=r"[a-z][a-z0-9_]*",


# Rules that only gather targets, or are small, run on the submitting machine, never as jobs.
localrules:
    all,
    features,
    train,
    evaluate,
    ablation,
    trial,
    trial_compare,
    controls,
    unsupervised,
    gradients,
    report,


rule all:
    default_target: True
    input:
        rules.report.output,
