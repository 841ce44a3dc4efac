# Training: every compared head with every seed of the profile.
#
# The run folder is not an output: a killed job leaves its checkpoints, and `cheeger train`
# resumes from them on the next attempt. The output is the completion marker, a copy of the
# run's final.json. When Snakemake reruns a job whose run had finished (its settings or code
# changed), the old run is removed first, since `cheeger train` refuses to continue a run of
# other settings and would otherwise return the finished one.


rule train_run:
    input:
        data=path(L.PREPARED),
        features=FEATURES_DONE,
        code=code("train"),
        fingerprint=fingerprint_file("train_run", "train", train_settings),
    output:
        done=path(L.RUN_DONE),
    params:
        params_file=PARAMS,
        profile=PROFILE,
        settings=train_settings,
        run=lambda wildcards, output: output.done.removesuffix(".json"),
    log:
        log("train/{head}-seed{seed}"),
    threads: THREADS
    conda:
        ENV
    shell:
        "(test ! -f {params.run}/final.json || rm -rf {params.run}) && "
        "cheeger train --params {params.params_file} --profile {params.profile} --head {wildcards.head} "
        "--seed {wildcards.seed} --data {input.data} --out {params.run} --threads {threads} "
        "--no-progress > {log} 2>&1 && "
        "cp {params.run}/final.json {output.done}"


rule train:
    input:
        RUN_DONE,
