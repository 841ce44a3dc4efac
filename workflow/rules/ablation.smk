# Ablations of the ablated head (study.ablation): one run per axis value and ablation seed, each
# an ordinary `cheeger train` run on a params variant differing in the ablated key only, scored
# on the ablation split. The main runs with the same seeds are the baselines.


rule ablation_run:
    input:
        data=path(L.PREPARED),
        features=FEATURES_DONE,
        fingerprint=fingerprint_file("ablation_run", "ablation", ablation_settings),
    output:
        done=path(L.ABLATION_DONE),
        params=path(L.ABLATION_PARAMS),
    params:
        params_file=PARAMS,
        profile=PROFILE,
        settings=ablation_settings,
        set=lambda wildcards: set_arguments(STUDY.axis(wildcards.axis).settings(wildcards.value)),
        head=STUDY.ablation_head,
        run=lambda wildcards, output: output.done.removesuffix(".json"),
    log:
        log("ablation/{axis}-{value}-seed{seed}"),
    threads: THREADS
    conda:
        ENV
    shell:
        VARIANT_RUN


rule ablation_evaluate:
    input:
        done=path(L.ABLATION_DONE),
        params=path(L.ABLATION_PARAMS),
        data=path(L.PREPARED),
        fingerprint=fingerprint_file("ablation_evaluate", "evaluate", EVALUATE_SETTINGS),
    output:
        path(L.ABLATION_EVAL),
    params:
        params_file=PARAMS,
        profile=PROFILE,
        settings=EVALUATE_SETTINGS,
        run=lambda wildcards, input: input.done.removesuffix(".json"),
    log:
        log("ablation/{axis}-{value}-seed{seed}-{split}"),
    threads: THREADS
    conda:
        ENV
    shell:
        VARIANT_EVALUATE


rule ablation:
    input:
        ABLATION_EVALUATIONS,
