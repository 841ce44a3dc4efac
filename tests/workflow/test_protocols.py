"""The report reads the committed reports of the other profiles of its dataset (both protocols
side by side): they are inputs of the report job, so a changed one reruns it."""

from __future__ import annotations

import re


def _report_inputs(output: str) -> str:
    return re.search(r"rule report:\n\s+input: ([^\n]*)", output).group(1)


def test_another_profiles_report_of_the_dataset_is_a_report_input(study_dir, sm):
    def edit(p):
        p["profile"] = "camvid_lite0"

    folder = study_dir(edit)
    alone = sm(["-n"], folder)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert "results/camvid/metrics.json" not in _report_inputs(alone.stdout)
    for name in ("camvid", "embedded"):  # embedded: another dataset, never compared
        (folder / "results" / name).mkdir(parents=True)
        (folder / "results" / name / "metrics.json").write_text("{}")
    both = sm(["-n"], folder)
    assert both.returncode == 0, both.stdout + both.stderr
    inputs = _report_inputs(both.stdout)
    assert "results/camvid/metrics.json" in inputs
    assert "results/embedded/metrics.json" not in inputs
