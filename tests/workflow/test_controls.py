"""The controls' jobs (study.controls): each control's head retrained on a params variant with
its seeds and scored on the report split; a profile without controls has no control job."""

from __future__ import annotations

import re

from cheeger.study import layout as L

from .test_dag import expected_jobs

CONTROLS = [
    {"name": "no_graph", "head": "spectral", "set": {"spectral.head.filter": "zero"},
     "seeds": [0, 1], "why": "h = 0"},
    {"name": "fine", "head": "spectral", "set": {"spectral.head.stride": 4}},
]  # fmt: skip


def _with_controls(p):
    p["profile"] = "embedded"
    p["profiles"]["embedded"]["study"]["controls"] = CONTROLS


def test_controls_run_their_seeds_on_variants_and_reach_the_report(study_dir, sm, counts):
    folder = study_dir(_with_controls)
    result = sm(["-n", "-p"], folder)
    assert result.returncode == 0, result.stdout + result.stderr
    found = counts(result.stdout)
    params = __import__("yaml").safe_load((folder / "params.yaml").read_text())
    expected = expected_jobs(params, "embedded")
    seeds = params["profiles"]["embedded"]["seeds"]
    assert expected["control_run"] == expected["control_evaluate"] == 2 + len(seeds)
    assert {k: v for k, v in found.items() if k != "total"} == expected
    commands = re.findall(r"Shell command: (cheeger variant [^\n]*control[^\n]*)", result.stdout)
    assert len(commands) == 2 + len(seeds)
    no_graph = [c for c in commands if "/no_graph/" in c]
    assert len(no_graph) == 2 and all("--set 'spectral.head.filter=\"zero\"'" in c
                                      for c in no_graph)  # fmt: skip
    assert all("--head spectral" in c and "--threads 1" in c for c in commands)
    report = re.search(r"rule report:\n\s+input: ([^\n]*)", result.stdout).group(1)
    for seed in (0, 1):  # the report reads every control evaluation, on the test split
        fields = {"profile": "embedded", "control": "no_graph", "seed": seed, "split": "test"}
        assert "results/" + L.CONTROL_EVAL.format(**fields) in report
    assert "results/" + L.CONTROL_EVAL.format(profile="embedded", control="no_graph", seed=2,
                                              split="test") not in result.stdout  # fmt: skip


def test_the_controls_target_makes_the_stage_folders_and_nothing_else_without_controls(
    study_dir, sm, counts
):
    folder = study_dir(lambda p: p.update(profile="embedded"))
    result = sm(["-n", "-p", "controls"], folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(counts(result.stdout)) == {"controls", "total"}
    assert ("mkdir -p results/embedded/controls/runs results/embedded/controls/eval"
            in result.stdout)  # the DVC stage's outputs exist for every profile
    full = sm(["-n"], study_dir(lambda p: p.update(profile="embedded"), name="plain"))
    assert full.returncode == 0, full.stdout + full.stderr
    assert not re.search(r"control_|/controls/", full.stdout)  # today's DAG


def test_a_control_that_changes_nothing_stops_the_dag_naming_it(study_dir, sm):
    def edit(p):
        _with_controls(p)
        p["profiles"]["embedded"]["study"]["controls"][1]["set"] = {"spectral.head.stride": 8}

    result = sm(["-n"], study_dir(edit))
    assert result.returncode != 0
    assert ("study.controls[1].set: every value equals the main runs'"
            in result.stdout + result.stderr)  # fmt: skip
