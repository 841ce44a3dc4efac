# Ablations of the ablated head (study.ablation): one run per axis value and ablation seed, each
# an ordinary `cheeger train` run on a params variant differing in the ablated key only, scored
# on the ablation split. The main runs with the same seeds are the baselines.


rule ablation_run:
    input:
        data=path(L.PREPARED),
        code=code("ablation"),
    output:
        done=path(L.ABLATION_DONE),
        params=path(L.ABLATION_PARAMS),
    params:
        params_file=PARAMS,
        profile=PROFILE,
        settings=lambda wildcards: {
            "base": run_settings(STUDY.ablation_head),
            "set": STUDY.axis(wildcards.axis).settings(wildcards.value),
        },
        set=lambda wildcards: ablation_settings(wildcards.axis, wildcards.value),
        head=STUDY.ablation_head,
        run=lambda wildcards, output: output.done.removesuffix(".json"),
    log:
        log("ablation/{axis}-{value}-seed{seed}"),
    threads: THREADS
    conda:
        ENV
    shell:
        "cheeger variant --params {params.params_file} --profile {params.profile} {params.set} "
        "--out {output.params} > {log} 2>&1 && "
        "(test ! -f {params.run}/final.json || rm -rf {params.run}) && "
        "cheeger train --params {output.params} --profile {params.profile} --head {params.head} "
        "--seed {wildcards.seed} --data {input.data} --out {params.run} --threads {threads} "
        "--no-progress >> {log} 2>&1 && "
        "cp {params.run}/final.json {output.done}"


rule ablation_evaluate:
    input:
        done=path(L.ABLATION_DONE),
        params=path(L.ABLATION_PARAMS),
        data=path(L.PREPARED),
        code=code("evaluate"),
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
        "cheeger evaluate --params {input.params} --profile {params.profile} --run {params.run} "
        "--data {input.data} --split {wildcards.split} --out {output} --threads {threads} "
        "> {log} 2>&1"


rule ablation:
    input:
        ABLATION_EVALUATIONS,
