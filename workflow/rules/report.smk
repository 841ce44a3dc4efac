# The report: tables, figures, metrics.json and README.md of the active profile in its folder,
# results/<profile>/ (L.REPORT).


rule report:
    input:
        runs=RUN_DONE,
        evaluations=EVALUATIONS,
        ablation_runs=ABLATION_DONE,
        ablations=ABLATION_EVALUATIONS,
        trial=path(L.TRIAL_SUMMARY),
        control_runs=CONTROL_DONE,
        controls=CONTROL_EVALUATIONS,
        unsupervised=UNSUPERVISED_DONE,
        scaling=path(L.SCALING_TABLE),
        gradients=path(L.GRADIENTS),
        broadening=path(L.BROADENING),
        other_reports=other_reports(),
        data=path(L.PREPARED),
        fingerprint=fingerprint_file("report", "report", STUDY_SETTINGS),
    output:
        readme=path(L.README),
        metrics=path(L.METRICS),
        tables=directory(path(L.TABLES)),
        figures=directory(path(L.FIGURES)),
    params:
        params_file=PARAMS,
        profile=PROFILE,
        # results/ and results/<profile>/: the README's folders, as deep as the layout says
        results=lambda wildcards, output: Path(output.readme).parents[len(Path(L.README).parts) - 1],
        out=lambda wildcards, output: Path(output.readme).parent,
        settings=STUDY_SETTINGS,
    log:
        log("report"),
    threads: THREADS
    conda:
        ENV
    shell:
        "cheeger report --params {params.params_file} --profile {params.profile} --results {params.results} "
        "--out {params.out} --threads {threads} > {log} 2>&1"
