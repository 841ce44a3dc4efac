"""The report of a study with controls: the controls table, graph diagnostics, solver totals,
both protocols side by side, the published rows and metrics.json (tiny synthetic run folders)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from cheeger.config import ParamsError
from cheeger.study.config import StudyConfig
from cheeger.study.controls import collect_controls, controls_table
from cheeger.study.diagnostics import diagnostics_table, diagnostics_view
from cheeger.study.layout import (
    CONTROL_EVAL,
    CONTROL_PARAMS,
    METRICS,
    TABLES,
    Layout,
    StudyFileError,
)
from cheeger.study.protocols import UNRECORDED, protocol_record
from cheeger.study.readme import REFERENCES, render_readme
from cheeger.study.report import make_report

from .conftest import DIAGNOSTICS, SOLVER

CONTROLS = [
    {"name": "no_graph", "head": "spectral", "set": {"spectral.head.filter": "zero"},
     "seeds": [0, 1], "why": "the graph term removed"},
    {"name": "fine", "head": "spectral", "set": {"spectral.head.stride": 4}},
]  # fmt: skip


def _with_controls(params: dict) -> None:
    params["study"]["controls"] = CONTROLS
    params["spectral"]["head"]["stride"] = 8


def _report(root, **kwargs) -> dict:
    return make_report(root / "params.yaml", results=root / "results", out=root / "out",
                       figures=kwargs.pop("figures", False), panel=False, **kwargs)  # fmt: skip


def _control_mious(root, study, name) -> list[float]:
    layout = Layout(root / "results")
    return [json.loads(layout.path(CONTROL_EVAL, profile=study.profile, control=name, seed=s,
                                   split="test").read_text())["miou"]
            for s in study.control(name).seeds]  # fmt: skip


def test_controls_are_compared_with_every_head_by_welch(synthetic_study):
    root, study = synthetic_study(0.0, edit=_with_controls,
                                  control_effects={"no_graph": -0.1})  # fmt: skip
    metrics = _report(root)
    mine = _control_mious(root, study, "no_graph")
    t = stats.t.ppf(0.975, len(mine) - 1) * np.std(mine, ddof=1) / np.sqrt(len(mine))
    block = metrics["controls"]["no_graph"]["miou"]
    assert block["mean"] == pytest.approx(np.mean(mine), abs=1e-9)
    assert block["std"] == pytest.approx(np.std(mine, ddof=1), abs=1e-9)
    assert block["ci_low"] == pytest.approx(np.mean(mine) - t, abs=1e-9)
    assert set(metrics["controls"]) == {"no_graph", "fine"} and len(metrics["controls"]["fine"])
    table = pd.read_csv(root / "out" / "tables" / "controls_test.csv")
    assert len(table) == 2 * 2 * 6  # controls x heads x metrics
    row = table[(table["control"] == "no_graph") & (table["against"] == "spectral")
                & (table["metric"] == "miou")].iloc[0]  # fmt: skip
    scalars = collect_controls(study, Layout(root / "results")).scalars
    assert sorted(scalars.loc[(scalars["head"] == "no_graph") & (scalars["metric"] == "miou"),
                              "value"]) == sorted(mine)  # fmt: skip
    assert row["verdict"] == "worse" and row["ci_high"] < 0
    fine = table[(table["control"] == "fine") & (table["metric"] == "miou")]
    assert (fine["verdict"] == "within noise").all()
    readme = (root / "out" / "README.md").read_text()
    assert "## Controls (test, Welch)" in readme and "no_graph - conv" in readme
    assert "`no_graph`: the spectral head with `spectral.head.filter = zero`, seeds [0, 1]. " \
           "the graph term removed" in readme  # fmt: skip
    assert "What the controls say" in readme and "`no_graph` - spectral, miou:" in readme
    assert "controls: no_graph: spectral head, seeds [0, 1]; fine" in readme  # protocol line


def test_the_graph_diagnostics_are_the_last_epochs_mean_over_seeds(synthetic_study):
    root, study = synthetic_study(0.0, edit=_with_controls)
    _report(root)
    table = pd.read_csv(root / "out" / "tables" / "diagnostics.csv")
    assert "conv" not in set(table["head"])  # no graph, no diagnostics
    assert list(dict.fromkeys(table["head"])) == ["spectral", "no_graph", "fine"]
    for label, seeds in (("spectral", study.seeds), ("no_graph", (0, 1))):
        for name, value in DIAGNOSTICS.items():
            last = [value * (1 + 3 / 10 + s) for s in seeds]  # epoch 3 of each seed
            row = table[(table["head"] == label) & (table["diagnostic"] == name)].iloc[0]
            assert row["n"] == len(seeds)
            assert row["mean"] == pytest.approx(np.mean(last), rel=1e-6)
            assert row["std"] == pytest.approx(np.std(last, ddof=1), rel=1e-5)
    readme = (root / "out" / "README.md").read_text()
    assert "## Graph diagnostics" in readme and "| lambda2_grid " in readme
    assert "`y_ratio`: ||y|| / ||x_low||" in readme


def test_solver_totals_are_summed_per_head_and_control(synthetic_study):
    root, study = synthetic_study(0.0, edit=_with_controls)
    _report(root)
    summary = pd.read_csv(root / "out" / "tables" / "solver.csv").set_index("head")
    assert list(summary.index) == ["spectral", "no_graph", "fine"]  # conv has no solver
    runs = len(study.seeds)
    assert summary.loc["spectral", "runs"] == runs
    assert summary.loc["spectral", "methods"] == f"lanczos: {28 * runs}, lobpcg: {2 * runs}"
    assert summary.loc["no_graph", "fallback_steps"] == 2 * SOLVER["fallback_steps"]
    assert summary.loc["fine", "complement_stalled"] == runs * 3
    per_run = pd.read_csv(root / "out" / "tables" / "solver_runs.csv")
    assert len(per_run) == runs + 2 + runs


def test_the_figures_of_controls_and_diagnostics_are_drawn(synthetic_study):
    root, _ = synthetic_study(0.0, edit=_with_controls)
    _report(root, figures=True)
    for name in ("controls_test", "diagnostics"):
        assert (root / "out" / "figures" / f"{name}.png").stat().st_size > 1000
    assert "figures/diagnostics.png" in (root / "out" / "README.md").read_text()


def test_a_stale_or_missing_control_run_is_an_error_naming_it(synthetic_study):
    root, _ = synthetic_study(0.0, edit=_with_controls)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["study"]["controls"][1]["set"] = {"spectral.head.stride": 2}
    with pytest.raises(ParamsError, match=r"spectral\.head\.stride = 4, the trial sets 2"):
        collect_controls(StudyConfig.from_params(params), Layout(root / "results"))
    path = Layout(root / "results").path(CONTROL_EVAL, profile="embedded", control="no_graph",
                                         seed=1, split="test")  # fmt: skip
    path.unlink()
    with pytest.raises(StudyFileError, match=str(path)):
        _report(root)
    params_file = Layout().path(CONTROL_PARAMS, profile="p", control="c", seed=0)
    assert params_file.name == "seed0.params.yaml"


def test_without_controls_the_report_is_as_before_plus_its_protocol(synthetic_study):
    root, _ = synthetic_study(0.0)
    metrics = _report(root)
    assert "controls" not in metrics
    assert metrics["protocol"] == {
        "dataset": "synthetic", "encoder": "unet", "pretrained": False, "frozen": False,
        "features_cached": False, "decoder": "unet depth 3 width 8", "resolution": [16, 20],
        "epochs": 60, "batch_size": 4, "augment": {"scale": [0.75, 1.25], "crop": None,
                                                   "hflip": 0.5}}  # fmt: skip
    readme = (root / "out" / "README.md").read_text()
    assert "Controls" not in readme and "Both protocols" not in readme
    assert not (root / "out" / "tables" / "controls_test.csv").exists()


def _other_profile(root, recorded: bool) -> None:
    """A second synthetic profile (a U-Net at 8x10) with a committed report in results/."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["profiles"]["other"] = {"dataset": "synthetic", "root": None, "resolution": [8, 10],
                                   "seeds": [0, 1, 2], "epochs": 20}  # fmt: skip
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    layout = Layout(root / "results")
    cell = {"mean": 0.31, "std": 0.01, "ci_low": 0.29, "ci_high": 0.33}
    metrics = {"profile": "other", "split": "test", "seeds": 3, "conv": {"miou": cell},
               "spectral": {"miou": {**cell, "mean": 0.32}},
               "spectral_minus_conv": {"miou": {"difference": 0.01}}}  # fmt: skip
    if recorded:
        metrics["protocol"] = protocol_record(params, "other")
    path = layout.path(METRICS, profile="other")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(metrics))
    tables = layout.path(TABLES, profile="other")
    tables.mkdir()
    pd.DataFrame({"class": ["road", "road"], "head": ["conv", "spectral"], "n": [3, 3],
                  "mean": [0.7, 0.71], "std": [0.01, 0.02], "sem": [0.006, 0.012],
                  "ci_low": [0.68, 0.66], "ci_high": [0.72, 0.76], "ci_half": [0.02, 0.05]}
                 ).to_csv(tables / "per_class_iou_test.csv", index=False)  # fmt: skip


@pytest.mark.parametrize("recorded", [False, True])
def test_another_protocol_of_the_dataset_is_shown_side_by_side(synthetic_study, recorded):
    root, _ = synthetic_study(0.0)
    _other_profile(root, recorded)
    _report(root)
    table = pd.read_csv(root / "out" / "tables" / "protocols_test.csv")
    assert list(table.columns) == ["metric", "embedded: conv", "embedded: spectral",
                                   "other: conv", "other: spectral"]  # fmt: skip
    miou = table.set_index("metric").loc["miou"]
    assert miou["other: spectral"] == "0.320 ± 0.010 [0.290, 0.330]"
    readme = (root / "out" / "README.md").read_text()
    assert "## Both protocols (test split)" in readme
    assert "- `other` (results/other/metrics.json): U-Net from scratch (depth 3 width 8), 8x10, " \
           "20 epochs, scale, crop and flips, 3 seeds" in readme  # fmt: skip
    assert (UNRECORDED in readme) is not recorded
    per_class = pd.read_csv(root / "out" / "tables" / "per_class_protocols_test.csv")
    assert per_class.set_index("class").loc["road", "other: conv"].startswith("0.700 ± 0.010")


def test_published_camvid_rows_name_how_our_protocol_differs():
    text = render_readme(profile="p", answer_text="", protocol=[], sections=[], figures={},
                         references=REFERENCES["camvid"], ours={"conv": {"miou": 0.61}},
                         ours_protocol="frozen EfficientNet-Lite0 (ImageNet), 10 epochs, CPU")
    for name, miou in (("SegNet-Basic", 47.7), ("ENet", 51.3), ("VGG16 encoder with ImageNet",
                       55.6), ("ESPNet", 55.6), ("FC-DenseNet103", 66.9)):  # fmt: skip
        line = next(line for line in text.splitlines() if name in line)
        assert f"{miou}" in line
    ours = next(line for line in text.splitlines() if line.startswith("| ours, conv head"))
    assert "(frozen EfficientNet-Lite0 (ImageNet), 10 epochs, CPU)" in ours
    assert re.search(r"\|\s+61\s+\|", ours) and not re.search(r"\|\s*nan\s*\|", text)
    assert "Our protocol differs (frozen EfficientNet-Lite0 (ImageNet), 10 epochs, CPU;" in text


def test_the_repository_profiles_record_their_protocols(repo_root):
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    lite0 = protocol_record(params, "camvid_lite0")
    assert (lite0["encoder"], lite0["pretrained"], lite0["frozen"], lite0["resolution"],
            lite0["epochs"], lite0["augment"]) == (
        "efficientnet_lite0", True, True, [360, 480], 10, {"hflip": 0.5})  # fmt: skip
    camvid = protocol_record(params, "camvid")
    assert (camvid["encoder"], camvid["resolution"], camvid["epochs"]) == ("unet", [180, 240], 20)


def test_a_diagnostic_a_label_lacks_reads_n_a():
    curves = pd.DataFrame({"head": ["spectral", "no_graph"], "seed": [0, 0], "epoch": [1, 1],
                           "diag_y_ratio": [0.2, 0.0], "diag_lambda2": [3e-3, np.nan]})
    view = diagnostics_view(diagnostics_table(curves))
    assert view.loc["lambda2", "no_graph"] == "n/a" and view.loc["y_ratio", "no_graph"] == "0"
    assert view.loc["lambda2", "spectral"] == "0.003"  # one seed: no spread


def test_diagnostics_of_runs_without_a_graph_are_an_empty_table():
    curves = pd.DataFrame({"head": ["conv"], "seed": [0], "epoch": [1], "val_miou": [0.3]})
    assert diagnostics_table(curves).empty
    nan = curves.assign(diag_y_ratio=np.nan)
    assert diagnostics_table(nan).empty


def test_controls_table_without_a_compared_heads_scores_names_them(synthetic_study):
    root, study = synthetic_study(0.0, edit=_with_controls)
    scalars = collect_controls(study, Layout(root / "results")).scalars
    with pytest.raises(ParamsError, match=r"no test scores of \['conv', 'spectral'\]"):
        controls_table(scalars, study)


def test_a_control_with_one_seed_says_it_has_no_interval(synthetic_study):
    def edit(params):
        _with_controls(params)
        params["study"]["controls"] = [{**CONTROLS[0], "seeds": [1]}]

    root, _ = synthetic_study(0.0, edit=edit)
    _report(root)
    readme = (root / "out" / "README.md").read_text()
    assert "`no_graph` - spectral, miou: " in readme and "nan" not in readme.split("## Protocol")[0]
    assert "(one seed: no interval)" in readme
    view = (root / "out" / "tables" / "controls_test.md").read_text()
    assert "[+nan" not in view and "(one seed: no interval)" in view
