# The report: tables, figures, metrics.json and README.md of the active profile in results/.


rule report:
    input:
        runs=RUN_DONE,
        evaluations=EVALUATIONS,
        ablation_runs=ABLATION_DONE,
        ablations=ABLATION_EVALUATIONS,
        trial=path(L.TRIAL_SUMMARY),
        scaling=path(L.SCALING_TABLE),
        gradients=path(L.GRADIENTS),
        data=path(L.PREPARED),
        code=code("report"),
    output:
        readme=f"{RESULTS}/README.md",
        metrics=f"{RESULTS}/metrics.json",
        tables=directory(f"{RESULTS}/tables"),
        figures=directory(f"{RESULTS}/figures"),
    params:
        params_file=PARAMS,
        profile=PROFILE,
        results=lambda wildcards, output: os.path.dirname(output.readme),
        settings=STUDY_SETTINGS,
    log:
        log("report"),
    threads: THREADS
    conda:
        ENV
    shell:
        "cheeger report --params {params.params_file} --profile {params.profile} --results {params.results} "
        "--out {params.results} --threads {threads} > {log} 2>&1"
