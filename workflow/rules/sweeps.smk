# Sweeps that need no training: eigensolver scaling (benchmarks/eigensolvers.py) and the
# gradient stability of the eigensolver's backward, and the broadened gradient's error on image
# graphs (cheeger/study/broadening.py).


rule scaling:
    input:
        fingerprint=fingerprint_file("scaling", "scaling", STUDY_SETTINGS.get("scaling", {})),
    output:
        json=path(L.SCALING),
        table=path(L.SCALING_TABLE),
    params:
        params_file=PARAMS,
        profile=PROFILE,
        settings=STUDY_SETTINGS.get("scaling", {}),
        checkout=os.path.relpath(workflow.basedir),
    log:
        log("scaling"),
    # A timing benchmark runs alone: it asks for every core of the machine (Snakemake lowers
    # that to --cores, and runs nothing beside it); on a cluster the profile's set-threads decides.
    threads: os.cpu_count() or 1
    conda:
        ENV
    shell:
        "cheeger scaling --params {params.params_file} --profile {params.profile} --out {output.json} "
        "--table {output.table} --checkout {params.checkout} --threads {threads} > {log} 2>&1"


rule gradients:
    input:
        fingerprint=fingerprint_file("gradients", "gradients", STUDY_SETTINGS.get("gradients", {})),
    output:
        path(L.GRADIENTS),
    params:
        params_file=PARAMS,
        profile=PROFILE,
        settings=STUDY_SETTINGS.get("gradients", {}),
    log:
        log("gradients"),
    threads: 1
    conda:
        ENV
    shell:
        "cheeger gradients --params {params.params_file} --profile {params.profile} --out {output} "
        "--threads {threads} > {log} 2>&1"


rule broadening:
    input:
        data=path(L.PREPARED),
        fingerprint=fingerprint_file("broadening", "broadening", STUDY_SETTINGS.get("broadening", {})),
    output:
        path(L.BROADENING),
    params:
        params_file=PARAMS,
        profile=PROFILE,
        settings=STUDY_SETTINGS.get("broadening", {}),
    log:
        log("broadening"),
    threads: 1
    conda:
        ENV
    shell:
        "cheeger broadening --params {params.params_file} --profile {params.profile} "
        "--prepared {input.data} --out {output} --threads {threads} > {log} 2>&1"
