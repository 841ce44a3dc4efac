# The frozen encoder's feature cache (model.features set: efficientnet_lite0, freeze_encoder):
# the taps of every prepared image and flip, computed once, read by every training job.
#
# The cache folder is not a declared output, as a run folder is not: a killed job leaves its
# finished files, and `cheeger features` computes only the missing ones on the next attempt. The
# output is features.json, which `cheeger features` writes last. When Snakemake reruns the job
# (its settings or code changed), `--replace` rebuilds a folder whose settings.json differs
# (data, weights, the encoder's input normalisation, the code computing the taps); a folder of
# the same settings is reused. (Testing for features.json here cannot work: Snakemake deletes a
# job's declared output before running it, so an old cache of other code was read as current.)


rule features_cache:
    input:
        data=path(L.PREPARED),
        fingerprint=fingerprint_file("features_cache", "features", FEATURES_SETTINGS),
    output:
        done=path(L.FEATURES_DONE),
    params:
        params_file=PARAMS,
        profile=PROFILE,
        settings=FEATURES_SETTINGS,
        folder=lambda wildcards, output: os.path.dirname(output.done),
    log:
        log("features"),
    threads: THREADS
    conda:
        ENV
    shell:
        "cheeger features --params {params.params_file} --profile {params.profile} "
        "--data {input.data} --out {params.folder} --replace --threads {threads} > {log} 2>&1"


# The DVC stage's target: the cache, or for a profile without one an empty folder (the stage's
# output exists for every profile, and nothing is computed).
rule features:
    input:
        FEATURES_DONE,
    params:
        folder=lambda wildcards: FEATURES,
    log:
        log("features-folder"),
    conda:
        ENV
    shell:
        "mkdir -p {params.folder} > {log} 2>&1"
