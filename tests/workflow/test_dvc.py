"""dvc.yaml and the Snakefile agree; and `dvc repro`, `dvc exp run -S`, `dvc metrics diff` work
on a tiny study in a temporary git repository (the end-to-end run of the real pipeline)."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from cheeger.study import layout as L

REPO = Path(__file__).resolve().parents[2]
STAGE_OUTS = {"data": [L.PREPARED], "features": [L.FEATURES], "train": [L.RUN],
              "evaluate": [L.EVAL], "ablation": [L.ABLATION_RUN], "scaling": [L.SCALING],
              "gradients": [L.GRADIENTS], "broadening": [L.BROADENING],
              "unsupervised": [L.UNSUPERVISED]}  # fmt: skip


@pytest.fixture(scope="module")
def dvc_yaml() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())


@pytest.fixture(scope="module")
def rules(sm) -> set[str]:
    result = sm(["--list-rules"], REPO)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_every_stage_runs_a_snakemake_target_without_executor_flags(dvc_yaml, rules):
    stages = dvc_yaml["stages"]
    assert set(stages) == {"data", "features", "train", "evaluate", "ablation", "trial",
                           "controls", "unsupervised", "scaling", "gradients", "broadening",
                           "report"}  # fmt: skip
    for name, stage in stages.items():
        match = re.fullmatch(r"snakemake --cores all (\w+)( --forcerun (\w+))?", stage["cmd"])
        assert match, (name, stage["cmd"])  # the executor comes from SNAKEMAKE_PROFILE only
        assert match.group(1) in rules
        # one-job stages with committed outputs force their job (a fresh clone's mtimes cannot
        # tell Snakemake that DVC saw their code change); the others keep Snakemake's per-job
        # decisions (a forced train stage would retrain every run for any change)
        forced = name in ("scaling", "gradients", "broadening", "report")
        assert (match.group(3) == match.group(1)) if forced else match.group(2) is None, name


def test_stage_params_exist_in_params_yaml(dvc_yaml, repo_params):
    for profile in repo_params["profiles"]:
        for stage in dvc_yaml["stages"].values():
            for key in stage["params"]:
                node = repo_params
                for part in key.replace("${profile}", profile).split("."):
                    assert isinstance(node, dict) and part in node, (key, profile)
                    node = node[part]


def test_stage_code_and_outputs_are_the_rules(dvc_yaml):
    for name, stage in dvc_yaml["stages"].items():
        deps = stage["deps"]
        code = [d for d in deps if d.startswith(("cheeger", "benchmarks"))]
        assert code == list(L.STAGE_CODE[name]), name  # what the rules fingerprint
        assert {"Snakefile", "workflow/rules/common.smk"} <= set(deps)
        assert all((REPO / d).exists() for d in deps if "${" not in d and "results" not in d)
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])]
        for template in STAGE_OUTS.get(name, []):
            assert _dvc_path(template, 2) in outs, (name, template)
        assert all(o.startswith("results/${profile}/") for o in outs), name  # profiles apart
    trial = dvc_yaml["stages"]["trial"]  # runs cached, evaluations and comparison committed
    outs = {next(iter(o)): o[next(iter(o))] for o in trial["outs"]}
    for template in (L.TRIAL_RUN, L.TRIAL_EVAL, L.TRIAL_SUMMARY):
        assert _dvc_path(template, 3) in outs, template
    assert outs["results/${profile}/trial/runs"].get("cache", True)
    assert outs["results/${profile}/trial/eval"]["cache"] is False
    controls = dvc_yaml["stages"]["controls"]  # runs cached, evaluations committed
    outs = {next(iter(o)): o[next(iter(o))] for o in controls["outs"]}
    assert set(outs) == {_dvc_path(t, 3) for t in (L.CONTROL_RUN, L.CONTROL_EVAL)}
    assert outs["results/${profile}/controls/runs"].get("cache", True)
    assert outs["results/${profile}/controls/eval"]["cache"] is False
    assert _dvc_path(L.CONTROL_EVAL, 3) in dvc_yaml["stages"]["report"]["deps"]
    report = dvc_yaml["stages"]["report"]
    assert [next(iter(m)) for m in report["metrics"]] == [_dvc_path(L.METRICS, 2)]
    assert [next(iter(o)) for o in report["outs"]] == [
        _dvc_path(t, 2) for t in (L.README, L.TABLES, L.FIGURES)]
    assert next(iter(dvc_yaml["plots"][0])).startswith(_dvc_path(L.TABLES, 2) + "/")


def _dvc_path(template: str, parts: int) -> str:
    """The DVC output holding a layout template's files: its first ``parts`` parts."""
    return "results/" + "/".join(template.split("/")[:parts]).replace("{profile}", "${profile}")


def test_cached_outputs_are_ignored_by_git_and_small_results_are_not(sh):
    def ignored(path: str) -> bool:
        return sh(["git", "check-ignore", "-q", "--no-index", path], REPO).returncode == 0

    for profile in ("camvid", "cityscapes"):  # the DVC-cached folders; the trial's checkpoints
        for folder in ("prepared", "features", "runs", "ablation", "trial/runs",
                       "controls/runs"):
            assert ignored(f"results/{profile}/{folder}/x"), (profile, folder)
        for name in ("eval/conv/seed0/test.json", "trial/eval/x/seed0/test.json",
                     "controls/eval/x/seed0/test.json",
                     "trial/compare/summary.json", "scaling/eigensolvers.csv",
                     "gradients/gradients.csv", "broadening/broadening.csv",
                     "tables/heads_test.csv", "figures/panel.png",
                     "README.md", "metrics.json", "fingerprints/report/0123456789abcdef.json"):
            assert not ignored(f"results/{profile}/{name}"), (profile, name)  # committed
    assert ignored("results/embedded/metrics.json")  # `make study` output, never committed
    assert ignored("dvc_plots/x") and ignored(".snakemake/x")


def _git(sh, args, cwd):
    result = sh(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], cwd)
    assert result.returncode == 0, result.stderr
    return result


def _copy_project(target: Path) -> None:
    for name in ("Snakefile", "dvc.yaml", ".dvcignore", ".gitignore", "pyproject.toml"):
        shutil.copy2(REPO / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("workflow", "cheeger", "benchmarks"):
        shutil.copytree(REPO / name, target / name, ignore=ignore)
    (target / ".dvc").mkdir()
    for name in ("config", ".gitignore"):
        shutil.copy2(REPO / ".dvc" / name, target / ".dvc" / name)


@pytest.mark.slow
def test_dvc_repro_an_experiment_its_metrics_diff_and_a_pull_from_the_remote(
    tmp_path, repo_params, shrink, sh
):
    repo = tmp_path / "clone"
    repo.mkdir()
    _copy_project(repo)
    # ../shared beside the checkout, as in CI: the eigensolver benchmark looks for its frame there
    (tmp_path / "shared").symlink_to(REPO.parent / "shared")
    params = shrink(repo_params)  # and smaller still: one seed, one ablation run
    params["profiles"]["embedded"]["seeds"] = [0]
    params["study"]["ablation"]["axes"].pop("filter")
    # a profile of its own, committed like camvid's (the embedded one is git-ignored)
    params["profiles"]["tiny"] = params["profiles"].pop("embedded")
    params["profile"] = "tiny"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _git(sh, ["init", "-q"], repo)
    _git(sh, ["add", "-A"], repo)
    _git(sh, ["commit", "-qm", "tiny study"], repo)

    start = time.perf_counter()
    result = sh(["dvc", "repro"], repo, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    repro_seconds = time.perf_counter() - start
    results = repo / "results" / "tiny"
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics["profile"] == "tiny" and metrics["seeds"] == 1
    readme = (results / "README.md").read_text()
    assert "**No answer beyond noise is possible**" in readme  # one seed: said, not faked
    assert (results / "figures" / "panel.png").stat().st_size > 1000
    assert sorted(p.name for p in (repo / "results").iterdir()) == ["tiny"]  # profiles apart
    status = sh(["dvc", "status"], repo)
    assert "up to date" in status.stdout, status.stdout
    dry = sh(["snakemake", "-n"], repo)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    _git(sh, ["add", "-A"], repo)
    _git(sh, ["commit", "-qm", "results"], repo)

    # the default remote (.dvc/config: a folder beside the checkout) takes the cached outputs;
    # another clone pulls them and re-evaluates a committed run to the same JSON, value for value
    # (all but the measured forward time, which no rerun reproduces)
    push = sh(["dvc", "push"], repo, timeout=600)
    assert push.returncode == 0, push.stdout + push.stderr
    assert (tmp_path / "cheeger-dvc-store").is_dir()
    other = tmp_path / "other"
    _git(sh, ["clone", "-q", str(repo), str(other)], tmp_path)
    (other / "results" / "tiny" / "runs").exists() and pytest.fail("runs are not in git")
    pull = sh(["dvc", "pull"], other, timeout=600)
    assert pull.returncode == 0, pull.stdout + pull.stderr
    committed = results / "eval" / "spectral" / "seed0" / "test.json"
    again = sh(["cheeger", "evaluate", "--params", "params.yaml", "--run",
                "results/tiny/runs/spectral/seed0", "--data", "results/tiny/prepared",
                "--split", "test", "--out", str(tmp_path / "again.json"), "--threads", "1"],
               other)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    again_json, committed_json = (json.loads(p.read_text())
                                  for p in (tmp_path / "again.json", committed))  # fmt: skip
    assert again_json.pop("forward")["seconds_per_image"] > 0
    assert committed_json.pop("forward")["seconds_per_image"] > 0
    assert again_json == committed_json

    runs = results / "runs"
    conv_mtime = (runs / "conv" / "seed0.json").stat().st_mtime_ns
    spectral_mtime = (runs / "spectral" / "seed0.json").stat().st_mtime_ns
    spectral_loss = (runs / "spectral" / "seed0" / "history.csv").read_text()
    result = sh(["dvc", "exp", "run", "-S", "spectral.alpha=0.3"], repo, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert yaml.safe_load((repo / "params.yaml").read_text())["spectral"]["alpha"] == 0.3
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert lock["stages"]["train"]["params"]["params.yaml"]["spectral"]["alpha"] == 0.3
    # Snakemake retrained the spectral runs only: the conv head does not read alpha
    assert (runs / "conv" / "seed0.json").stat().st_mtime_ns == conv_mtime
    assert (runs / "spectral" / "seed0.json").stat().st_mtime_ns != spectral_mtime
    assert (runs / "spectral" / "seed0" / "history.csv").read_text() != spectral_loss
    diff = sh(["dvc", "metrics", "diff", "--all", "--json"], repo)
    assert diff.returncode == 0, diff.stderr
    table = json.loads(diff.stdout)["results/tiny/metrics.json"]
    assert {"conv.miou.mean", "spectral.miou.mean", "spectral_minus_conv.miou.difference"} <= set(
        table)  # fmt: skip
    assert all(row["diff"] == 0 for key, row in table.items() if key.startswith("conv."))
    print(f"dvc repro of the tiny study: {repro_seconds:.0f} s")
