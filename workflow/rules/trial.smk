# The trial (study.trial): the one change tried after the ablations, within the main protocol.
# Its head is retrained with every seed on a params variant differing in the trial's keys only
# (as an ablation run), scored on the report split, and compared with every compared head.


rule trial_run:
    input:
        data=path(L.PREPARED),
        features=FEATURES_DONE,
        fingerprint=fingerprint_file("trial_run", "ablation", trial_settings),
    output:
        done=path(L.TRIAL_DONE),
        params=path(L.TRIAL_PARAMS),
    params:
        params_file=PARAMS,
        profile=PROFILE,
        settings=trial_settings,
        set=lambda wildcards: set_arguments(STUDY.trial.settings),
        head=lambda wildcards: STUDY.trial.head,
        run=lambda wildcards, output: output.done.removesuffix(".json"),
    log:
        log("trial/{trial}-seed{seed}"),
    threads: THREADS
    conda:
        ENV
    shell:
        VARIANT_RUN


rule trial_evaluate:
    input:
        done=path(L.TRIAL_DONE),
        params=path(L.TRIAL_PARAMS),
        data=path(L.PREPARED),
        fingerprint=fingerprint_file("trial_evaluate", "evaluate", EVALUATE_SETTINGS),
    output:
        path(L.TRIAL_EVAL),
    params:
        profile=PROFILE,
        settings=EVALUATE_SETTINGS,
        run=lambda wildcards, input: input.done.removesuffix(".json"),
    log:
        log("trial/{trial}-seed{seed}-{split}"),
    threads: THREADS
    conda:
        ENV
    shell:
        VARIANT_EVALUATE


# Without a trial it writes the summary alone (the trial stage's output always exists).
rule trial_compare:
    input:
        evaluations=TRIAL_BASELINES,
        trial=TRIAL_EVALUATIONS,
        fingerprint=fingerprint_file("trial_compare", "report", TRIAL_COMPARE_SETTINGS),
    output:
        summary=path(L.TRIAL_SUMMARY),
        tables=TRIAL_TABLES,
    params:
        params_file=PARAMS,
        profile=PROFILE,
        # results/: the summary's folder, as many levels up as its layout template is deep
        results=lambda wildcards, output: Path(output.summary).parents[
            len(Path(L.TRIAL_SUMMARY).parts) - 1],
        settings=TRIAL_COMPARE_SETTINGS,
    log:
        log("trial/compare"),
    threads: 1
    conda:
        ENV
    shell:
        "cheeger trial --params {params.params_file} --profile {params.profile} "
        "--results {params.results} > {log} 2>&1"


rule trial:
    input:
        path(L.TRIAL_SUMMARY),
