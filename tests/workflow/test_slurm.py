"""The SLURM profile: a dry run, and a real `--executor slurm` run against stand-in SLURM tools.

The stand-ins (``sbatch``, ``sacct``, ``srun``, ``sinfo`` first on PATH) record every ``sbatch``
call, run the submitted job at once on this machine and report its exit status to ``sacct``, so
the plugin's real submission path is exercised and the flags it passes can be checked.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

SLURM_PROFILE = Path(__file__).resolve().parents[2] / "workflow" / "profiles" / "slurm"

SBATCH = '''#!{python}
"""Stand-in sbatch: record the call, run the --wrap command now, print the job id."""
import json, os, subprocess, sys
from pathlib import Path
state = Path(os.environ["STANDIN_SLURM_DIR"])
state.mkdir(parents=True, exist_ok=True)
args = sys.argv[1:]
with open(state / "sbatch.jsonl", "a") as f:
    f.write(json.dumps(args) + "\\n")
jobid = str(len(list(state.glob("job-*"))) + 1)
wrap = next((a.split("=", 1)[1] for a in args if a.startswith("--wrap=")), None)
log = args[args.index("--output") + 1].replace("%j", jobid)
env = dict(os.environ, SLURM_JOB_ID=jobid, SLURM_JOBID=jobid)
with open(log, "w") as out:
    status = subprocess.run(["bash", "-c", wrap], stdout=out, stderr=subprocess.STDOUT,
                            env=env).returncode
(state / f"job-{{jobid}}").write_text(str(status))
print(jobid)
'''
SACCT = '''#!{python}
"""Stand-in sacct: every recorded job, COMPLETED or FAILED by its exit status."""
import os
from pathlib import Path
for job in sorted(Path(os.environ["STANDIN_SLURM_DIR"]).glob("job-*")):
    print(job.name[4:] + "|" + ("COMPLETED" if job.read_text() == "0" else "FAILED"))
'''
SRUN = """#!/usr/bin/env bash
# Stand-in srun: drop the job step's options, run the command.
while [[ $# -gt 0 && "$1" == -* ]]; do shift; done
exec "$@"
"""
SINFO = """#!/usr/bin/env bash
echo "PARTITION AVAIL"
"""


def _jobs(output: str) -> list[dict[str, str]]:
    """Each job block of a dry run: rule name and resources line."""
    jobs = []
    for block in re.split(r"\n(?=\[\w{3} \w{3})", output):
        rule = re.search(r"^rule (\w+):", block, re.MULTILINE)
        resources = re.search(r"resources: (.*)", block)
        if rule:
            jobs.append({"rule": rule.group(1),
                         "resources": resources.group(1) if resources else ""})  # fmt: skip
    return jobs


def test_slurm_dry_run_requests_gpus_for_training_jobs_only(study_dir, sm):
    result = sm(["-n", "--workflow-profile", str(SLURM_PROFILE)], study_dir())
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Using workflow specific profile {SLURM_PROFILE}" in result.stdout + result.stderr
    jobs = _jobs(result.stdout)
    gpu_rules = {"train_run", "ablation_run", "evaluate_run", "ablation_evaluate",
                 "trial_run", "trial_evaluate"}  # the camvid profile has a trial
    assert {job["rule"] for job in jobs} >= gpu_rules | {"prepare", "gradients", "report"}
    for job in jobs:
        resources = dict(item.split("=", 1) for item in job["resources"].split(", ") if item)
        if job["rule"] in gpu_rules:
            assert resources["gpu"] == "1" and resources["slurm_partition"] == "gpu", job
            assert int(resources["runtime"]) >= 60 and "cpus_per_gpu" in resources
        else:
            assert "gpu" not in resources, job


@pytest.mark.slow
def test_slurm_executor_submits_with_gpu_flags(study_dir, sm, shrink, tmp_path):
    """One conv run through the real plugin: the stand-in sbatch records its two jobs (data and
    training); the gradient sweep, a local rule, runs beside them without a submission."""
    bin_dir, state = tmp_path / "bin", tmp_path / "slurm-state"
    bin_dir.mkdir()
    for name, text in {"sbatch": SBATCH, "sacct": SACCT, "srun": SRUN, "sinfo": SINFO}.items():
        (bin_dir / name).write_text(text.format(python=sys.executable))
        (bin_dir / name).chmod(0o755)

    def edit(params):
        params = shrink(params)
        params["profiles"]["embedded"]["seeds"] = [0]
        params["study"]["heads"] = ["conv"]
        params["study"]["ablation"]["axes"] = {}
        return params

    folder = study_dir(edit)
    env = {"PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
           "STANDIN_SLURM_DIR": str(state)}  # fmt: skip
    result = sm(["--workflow-profile", str(SLURM_PROFILE), "--executor", "slurm",
                 "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "1",
                 "train", "gradients"], folder, env=env)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    calls = [json.loads(line) for line in (state / "sbatch.jsonl").read_text().splitlines()]
    by_rule = {next(a for a in call if a.startswith("rule_")): call for call in
               (call[call.index("--comment") + 1 :] for call in calls)}  # fmt: skip
    assert set(by_rule) == {"rule_prepare", "rule_train_run_wildcards_conv_0"}
    train = next(c for c in calls if "rule_train_run_wildcards_conv_0" in c)
    prepare = next(c for c in calls if "rule_prepare" in c)
    assert "--gpus=1" in train and "--cpus-per-gpu=4" in train
    assert train[train.index("-p") + 1] == "gpu" and train[train.index("-t") + 1] == "720"
    assert "--gpus=1" not in prepare and prepare[prepare.index("-p") + 1] == "cpu"
    assert all(not any(a.startswith(("--gres", "-G")) for a in c) for c in calls)
    assert (folder / "results" / "embedded" / "gradients" / "gradients.csv").is_file()
    done = folder / "results" / "embedded" / "runs" / "conv" / "seed0.json"
    assert json.loads(done.read_text())["head"] == "conv"
