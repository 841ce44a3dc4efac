# Training: every compared head with every seed of the profile.
#
# The run folder is not an output: a killed job leaves its checkpoints, and `cheeger train`
# resumes from them on the next attempt. The output is the completion marker, a copy of the
# run's final.json. When Snakemake reruns a job whose run had finished, or whose run was begun
# under another fingerprint (its settings or code changed), the old run is removed first
# (cheeger.study.layout.FRESH_RUN): `cheeger train` refuses to continue a run of other
# settings, would continue one of other code, and would return a finished one.


rule train_run:
    input:
        data=path(L.PREPARED),
        features=FEATURES_DONE,
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
        TRAIN_RUN


rule train:
    input:
        RUN_DONE,
