# The controls (study.controls): what a head's part does, in the main protocol. Each control is
# its head retrained on a params variant differing in the control's keys only (as an ablation
# run; e.g. the spectral head on the plain pixel grid, or with its graph term removed), with the
# control's seeds, scored on the report split; the report tables them beside the compared heads.
# A profile without controls has no control job (the DAG of `all` is unchanged).


rule control_run:
    input:
        data=path(L.PREPARED),
        features=FEATURES_DONE,
        fingerprint=fingerprint_file("control_run", "ablation", control_settings),
    output:
        done=path(L.CONTROL_DONE),
        params=path(L.CONTROL_PARAMS),
    params:
        params_file=PARAMS,
        profile=PROFILE,
        settings=control_settings,
        set=lambda wildcards: set_arguments(STUDY.control(wildcards.control).settings),
        head=lambda wildcards: STUDY.control(wildcards.control).head,
        run=lambda wildcards, output: output.done.removesuffix(".json"),
    log:
        log("controls/{control}-seed{seed}"),
    threads: THREADS
    conda:
        ENV
    shell:
        VARIANT_RUN


rule control_evaluate:
    input:
        done=path(L.CONTROL_DONE),
        params=path(L.CONTROL_PARAMS),
        data=path(L.PREPARED),
        fingerprint=fingerprint_file("control_evaluate", "evaluate", EVALUATE_SETTINGS),
    output:
        path(L.CONTROL_EVAL),
    params:
        profile=PROFILE,
        settings=EVALUATE_SETTINGS,
        run=lambda wildcards, input: input.done.removesuffix(".json"),
    log:
        log("controls/{control}-seed{seed}-{split}"),
    threads: THREADS
    conda:
        ENV
    shell:
        VARIANT_EVALUATE


# The DVC stage's target: the controls' evaluations, and the stage's two output folders, empty
# for a profile without controls (nothing is computed).
rule controls:
    input:
        CONTROL_EVALUATIONS,
    params:
        folders=lambda wildcards: " ".join(shlex.quote(folder) for folder in CONTROL_FOLDERS),
    log:
        log("controls-folders"),
    conda:
        ENV
    shell:
        "mkdir -p {params.folders} > {log} 2>&1"
