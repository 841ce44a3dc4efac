# Unsupervised segmentation on the frozen encoder's cached taps (profiles with model.features):
# k-means, the per-image eigensolver route and NeuralEF, fitted on train and scored on test
# (cheeger/unsupervised). The JSON is written last and atomically; a killed job leaves only
# progress.json (not an output), so the next attempt starts the job again.


rule unsupervised_run:
    input:
        data=path(L.PREPARED),
        features=FEATURES_DONE,
        fingerprint=fingerprint_file("unsupervised_run", "unsupervised", UNSUPERVISED_SETTINGS),
    output:
        done=path(L.UNSUPERVISED_DONE),
    params:
        params_file=PARAMS,
        profile=PROFILE,
        settings=UNSUPERVISED_SETTINGS,
        features=lambda wildcards: FEATURES,
        out=lambda wildcards, output: os.path.dirname(output.done),
    log:
        log("unsupervised"),
    threads: THREADS
    conda:
        ENV
    shell:
        "cheeger unsupervised --params {params.params_file} --profile {params.profile} "
        "--features {params.features} --data {input.data} --out {params.out} "
        "--threads {threads} > {log} 2>&1"


# The DVC stage's target: the JSON, or for a profile without a feature cache an empty folder.
rule unsupervised:
    input:
        UNSUPERVISED_DONE,
    params:
        folder=lambda wildcards: path(L.UNSUPERVISED),
    log:
        log("unsupervised-folder"),
    conda:
        ENV
    shell:
        "mkdir -p {params.folder} > {log} 2>&1"
