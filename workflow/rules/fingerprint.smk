# Fingerprints (common.smk: `fingerprint_file`): the record of the code and settings a job runs with,
# written just before the job, in a file named for their digest. It replaces the job's older
# record, so the folder holds the record of the job's current outputs.


rule fingerprint:
    output:
        path(L.FINGERPRINT),
    params:
        record=lambda wildcards: FINGERPRINTS[wildcards.job],
    log:
        log("fingerprints/{job}-{digest}"),
    run:
        write_fingerprint(output[0], params.record)
        Path(log[0]).write_text(f"{wildcards.job}: fingerprint {wildcards.digest}\n")
