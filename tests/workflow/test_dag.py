"""The study DAG: job counts per profile, lint, and params.yaml as the only source of settings."""

from __future__ import annotations

import re
import shlex

import pytest

from cheeger.cli import main
from cheeger.study import layout as L

PROFILES = ("embedded", "camvid", "cityscapes")


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both else value
    return out


def _lookup(tree: dict, key: str):
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def expected_jobs(params: dict, profile: str) -> dict[str, int]:
    """Job counts from the raw params, by arithmetic independent of cheeger.study."""
    block = params["profiles"][profile]
    study = _merge(params["study"], block.get("study", {}))
    heads, seeds = study["heads"], block["seeds"]
    ablation_seeds = block.get("ablation_seeds", seeds[:1])
    splits = [s for s in ("val", "test") if s in block.get("splits", ["train", "val", "test"])]
    ablated = 0
    for axis in study["ablation"]["axes"].values():
        baseline = _lookup(block, axis["key"])
        baseline = _lookup(params, axis["key"]) if baseline is None else baseline
        ablated += sum(1 for value in axis["values"] if value != baseline)
    runs = len(heads) * len(seeds)
    baselines = len(ablation_seeds) if ablated and len(splits) == 2 else 0  # on val
    trials = len(seeds) if study.get("trial") else 0  # the trial head, every seed
    controls = sum(len(c.get("seeds", seeds)) for c in study.get("controls") or [])
    counts = {"prepare": 1, "train_run": runs, "evaluate_run": runs + baselines,
            "ablation_run": ablated * len(ablation_seeds),
            "ablation_evaluate": ablated * len(ablation_seeds),
            "trial_run": trials, "trial_evaluate": trials, "trial_compare": 1,
            "control_run": controls, "control_evaluate": controls,
            "scaling": 1, "gradients": 1, "broadening": 1, "report": 1, "all": 1}  # fmt: skip
    return {rule: count for rule, count in counts.items() if count}


@pytest.mark.parametrize("profile", PROFILES)
def test_dry_run_has_the_expected_jobs_per_profile(profile, study_dir, sm, counts, tmp_path):
    fake_root = tmp_path / "cityscapes"  # a dry run reads no data: the root need not hold any
    fake_root.mkdir()

    def edit(p):
        p["profile"] = profile
        if profile == "cityscapes":
            p["profiles"]["cityscapes"]["root"] = str(fake_root)

    folder = study_dir(edit)
    result = sm(["-n", "-p"], folder)
    assert result.returncode == 0, result.stderr
    found = counts(result.stdout)
    params = __import__("yaml").safe_load((folder / "params.yaml").read_text())
    expected = expected_jobs(params, profile)
    assert {k: v for k, v in found.items() if k != "total"} == expected
    assert found["total"] == sum(expected.values())
    assert found["train_run"] == len(params["study"]["heads"]) * len(
        params["profiles"][profile]["seeds"])  # train jobs = heads x seeds
    assert found["ablation_run"] > 0
    if profile == "cityscapes":  # no test split: evaluation and the headline use val
        assert "test.json" not in result.stdout and "/val.json" in result.stdout
    else:  # test for every run; val for the ablation baselines only
        assert result.stdout.count("eval/camvid/conv/seed0/val.json") == 0
    # every command gets its job's threads, so torch never runs more threads than the job has
    shells = [line for line in result.stdout.splitlines()
              if line.startswith("Shell command:") and line != "Shell command: None"]  # fmt: skip
    assert len(shells) == found["total"] - found["all"]
    for shell in shells:
        for command in re.findall(r"cheeger (\w+) [^&]*", shell):
            torchless = ("variant", "trial")  # these run no torch computation
            assert command in torchless or "--threads" in shell.split(f"cheeger {command}")[1]
    for threads, given in re.findall(r"threads: (\d+)\n(?:.*\n)*?Shell command: [^\n]*"
                                     r"--threads (\d+)", result.stdout):  # fmt: skip
        assert threads == given


def test_lint_is_clean(sm, repo_root):
    result = sm(["--lint"], repo_root)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in output
    assert "Lints for" not in output


def test_config_overrides_are_refused_but_the_profile_may_be_chosen(study_dir, sm):
    folder = study_dir()
    result = sm(["-n", "--config", "spectral={'alpha': 0.3}"], folder)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "differs from params.yaml in ['spectral']" in output
    assert "dvc exp run -S" in output
    # choosing the profile (what `make study` does) sets no setting: the jobs get --profile
    chosen = sm(["-n", "-p", "--config", "profile=embedded"], folder)
    assert chosen.returncode == 0, chosen.stdout + chosen.stderr
    assert "--profile embedded" in chosen.stdout
    assert "results/embedded/runs/" in chosen.stdout


MALFORMED = [
    (lambda p: p["profiles"]["embedded"].update(seeds=[]),
     "params.yaml: profiles.embedded.seeds: expected a non-empty list of distinct ints >= 0, "
     "got []"),
    (lambda p: p["profiles"]["embedded"].update(threads=0),
     "params.yaml: profiles.embedded.threads: expected an int >= 1, got 0"),
    (lambda p: p["profiles"]["camvid"].update(seed=[0]),
     "params.yaml: profiles.camvid: unknown key(s) ['seed']; expected some of ['dataset', "),
    (lambda p: p["spectral"].update(alpha=-0.5),
     "params.yaml: spectral.alpha: expected a number >= 0, got -0.5"),
    (lambda p: p["study"]["ablation"]["axes"]["alpha"].update(values="0.3"),
     "params.yaml: study.ablation.axes.alpha.values: expected a list, got '0.3'"),
    (lambda p: p.update(studdy={}),
     "params.yaml: <top level>: unknown key(s) ['studdy']; expected some of ['profile', "),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "message"), MALFORMED)
def test_malformed_params_are_rejected_by_the_cli_naming_the_key(
    edit, message, study_dir, capsys
):
    folder = study_dir(edit)
    status = main(["gradients", "--params", str(folder / "params.yaml"), "--out",
                   str(folder / "g.csv")])  # fmt: skip
    error = capsys.readouterr().err
    assert status == 1 and not (folder / "g.csv").exists()
    assert error.startswith(f"cheeger gradients: error: {message}")
    assert error.count("\n") == 1  # one line, no traceback


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        MALFORMED[0],
        # the active profile's study settings are checked (an inactive one's when chosen)
        (lambda p: p.update(profile="embedded") or p["profiles"]["embedded"].update(
            ablation_seeds=[7]),
         "params.yaml: profiles.embedded.ablation_seeds: expected a subset of "
         "profiles.embedded.seeds [0, 1, 2]"),
    ],
)  # fmt: skip
def test_malformed_params_stop_snakemake_with_the_same_message(edit, message, study_dir, sm):
    result = sm(["-n"], study_dir(edit))
    assert result.returncode != 0
    assert f"invalid settings: {message}" in result.stdout + result.stderr


def test_run_marker_is_the_run_folder_plus_json():
    # the rules find a run folder from its marker by removing ".json"
    assert L.RUN_DONE == L.RUN + ".json"
    assert L.ABLATION_DONE == L.ABLATION_RUN + ".json"


def _make_study_args(repo_root, profile="embedded"):
    """The arguments `make study` gives snakemake (read from the Makefile's recipe)."""
    makefile = (repo_root / "Makefile").read_text().replace("\\\n", " ")
    recipe = re.search(r"^study: .*\n\t(.*)$", makefile, re.MULTILINE).group(1)
    args = shlex.split(recipe.split("/snakemake", 1)[1])
    args = [a.replace("$(STUDY_PROFILE)", profile) for a in args]
    return [str(repo_root / a) if a.startswith("workflow/") else a for a in args]


def test_make_study_runs_beside_another_profiles_committed_report(study_dir, sm, counts, repo_root):
    # a clone holds the committed CamVid report in results/camvid/ and no Snakemake metadata:
    # the command `make study` runs must still build the embedded study, not find `all` satisfied
    folder = study_dir()
    for name in ("README.md", "metrics.json", "tables/heads_test.csv", "figures/curves.png"):
        (folder / "results" / "camvid" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "results" / "camvid" / name).write_text("another profile's report")
    result = sm(["-n", *_make_study_args(repo_root)], folder)
    assert result.returncode == 0, result.stdout + result.stderr
    found = counts(result.stdout)
    assert found.get("train_run") == 6 and found.get("report") == 1, found


def test_make_study_writes_no_committed_file(sm, sh, repo_root):
    # Every file the embedded study (what `make study` runs, in the checkout itself) would write
    # lies in results/embedded/ or logs/, and git tracks none of them: a profile's run never
    # writes another profile's committed report.
    args = _make_study_args(repo_root)
    if "--forcerun" in args:  # --summary lists every output anyway
        del args[args.index("--forcerun") : args.index("--forcerun") + 2]
    result = sm([*args, "--summary", "--nolock"], repo_root)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    start = next(i for i, row in enumerate(rows) if row[0] == "output_file")
    outputs = [row[0] for row in rows[start + 1 :] if len(row) > 2]
    assert len(outputs) > 20 and "results/embedded/metrics.json" in outputs
    logs = re.findall(r"^    log: (.*)$", sm(["-n", "-F", *args, "--nolock"], repo_root).stdout,
                      re.MULTILINE)  # fmt: skip
    assert logs and all(log.startswith("logs/embedded/") for log in logs)
    outside = [o for o in outputs if not o.startswith("results/embedded/")]
    assert not outside, outside[:5]
    for folder in ("results/embedded", "logs"):  # git-ignored, so never committed by mistake
        assert sh(["git", "check-ignore", "-q", f"{folder}/x"], repo_root).returncode == 0
    tracked = sh(["git", "ls-files", "--", *outputs], repo_root).stdout.split()
    assert not tracked, tracked[:5]
