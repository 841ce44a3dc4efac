# Evaluation: every main run on the report split (test, or val where a profile has no test),
# and the ablation baselines (the ablated head's main runs with the ablation seeds) on the split
# the ablations are scored on (val).


rule evaluate_run:
    input:
        done=path(L.RUN_DONE),
        data=path(L.PREPARED),
        fingerprint=fingerprint_file("evaluate_run", "evaluate", EVALUATE_SETTINGS),
    output:
        path(L.EVAL),
    params:
        params_file=PARAMS,
        profile=PROFILE,
        settings=EVALUATE_SETTINGS,
        run=lambda wildcards, input: input.done.removesuffix(".json"),
    log:
        log("evaluate/{head}-seed{seed}-{split}"),
    threads: THREADS
    conda:
        ENV
    shell:
        "cheeger evaluate --params {params.params_file} --profile {params.profile} --run {params.run} "
        "--data {input.data} --split {wildcards.split} --out {output} --threads {threads} "
        "> {log} 2>&1"


rule evaluate:
    input:
        EVALUATIONS,
