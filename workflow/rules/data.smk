# Data: the active profile's dataset, generated, read or downloaded, in the prepared format.


rule prepare:
    input:
        fingerprint=fingerprint_file("prepare", "data", PREPARE_SETTINGS),
    output:
        directory(path(L.PREPARED)),
    params:
        params_file=PARAMS,
        profile=PROFILE,
        settings=PREPARE_SETTINGS,
    log:
        log("prepare"),
    threads: 1
    conda:
        ENV
    shell:
        "cheeger prepare --params {params.params_file} --profile {params.profile} --out {output} "
        "--threads {threads} > {log} 2>&1"
