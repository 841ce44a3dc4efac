"""The report of a study with a third head (neuralef against spectral) and the unsupervised
routes (metrics.json, tables, README section), on tiny synthetic run folders."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cheeger.study.layout import EVAL, METRICS, README, TABLES, UNSUPERVISED_DONE, Layout
from cheeger.study.report import make_report
from cheeger.study.unsupervised import unsupervised_metrics, unsupervised_table, unsupervised_text


def _route(miou: float, cpu: float, matching: str = "hungarian", clusters: int = 11) -> dict:
    return {"miou": miou, "pixel_accuracy": miou + 0.3, "boundary_miou": miou / 2,
            "seconds_per_image": 10 * cpu, "route_seconds_per_image": 2 * cpu,
            "route_cpu_seconds_per_image": cpu, "clusters": clusters, "matching": matching,
            "images": 4}  # fmt: skip


def _unsupervised() -> dict:
    report = {"protocol": {"split_fitted": "train", "split_scored": "test",
                           "matching_fitted_on": "test confusion", "timing": "one thread"},
              "reference": {"source": "seed 001", "dataset": "Cityscapes (27 classes)",
                            "backbone": "ViT-S/16", "kmeans_miou": 0.224,
                            "neuralef_miou": 0.282}}  # fmt: skip
    for name, miou, cpu in (("kmeans", 0.19, 0.002), ("eigsh", 0.22, 0.040),
                            ("neuralef", 0.21, 0.004)):  # fmt: skip
        report[name] = {**_route(miou, cpu), "majority": _route(miou + 0.1, cpu, "majority", 32)}
    report["neuralef"]["principal_angles"] = {"principal_angles": [4.5, 30.0, 89.9],
                                              "median_angle": 30.0}  # fmt: skip
    return report


def test_the_unsupervised_table_and_metrics_read_both_passes():
    report = _unsupervised()
    table = unsupervised_table(report)
    assert list(table["route"]) == ["kmeans", "kmeans", "eigsh", "eigsh", "neuralef", "neuralef"]
    assert list(table["matching"]) == ["hungarian", "majority"] * 3
    assert table.loc[table["matching"] == "majority", "clusters"].tolist() == [32, 32, 32]
    assert unsupervised_metrics(report)["eigsh"] == {"miou": 0.22, "pixel_accuracy": 0.52,
                                                     "seconds_per_image": 0.4}  # fmt: skip
    text = unsupervised_text(report)
    assert "10.0x faster" in text  # 0.040 / 0.004 s of route CPU time
    assert "-1.0 points" in text  # 0.21 - 0.22
    assert "4.5..89.9 degrees" in text and "Cityscapes" in text


def test_a_route_that_did_not_finish_is_left_out():
    report = _unsupervised()
    del report["neuralef"]
    assert set(unsupervised_metrics(report)) == {"kmeans", "eigsh"}
    assert "NeuralEF against" not in unsupervised_text(report)


@pytest.fixture
def three_heads(synthetic_study):
    def edit(params):
        params["study"]["heads"] = ["conv", "spectral", "neuralef"]

    return synthetic_study(0.05, edit)


def test_a_third_head_is_compared_with_the_challenger(three_heads):
    root, study = three_heads
    metrics = make_report(root / "params.yaml", results=root / "results", out=root / "out",
                          figures=False, panel=False)  # fmt: skip
    layout = Layout(root / "results")

    def mious(head):
        return [json.loads(layout.path(EVAL, profile=study.profile, head=head, seed=s,
                                       split="test").read_text())["miou"]
                for s in study.seeds]  # fmt: skip

    expected = np.mean(mious("neuralef")) - np.mean(mious("spectral"))
    got = metrics["neuralef_minus_spectral"]["miou"]["difference"]
    assert got == pytest.approx(expected, abs=1e-9) and got < -0.03  # planted: -0.05
    assert metrics["spectral_minus_conv"]["miou"]["difference"] > 0.03
    assert set(metrics["neuralef"]) >= {"miou", "boundary_miou"}
    table = pd.read_csv(root / "out/tables/comparison_neuralef_test.csv")
    assert table.loc[table["metric"] == "miou", "difference"].item() == pytest.approx(got)
    assert "neuralef minus spectral" in (root / "out/README.md").read_text()
    assert "unsupervised" not in metrics  # no feature cache, no unsupervised stage
    cost = pd.read_csv(root / "out/tables/cost.csv")  # planted: 10 s over 3 epochs per run
    assert cost["head"].tolist() == ["conv", "spectral", "neuralef"]
    assert cost["runs"].tolist() == [len(study.seeds)] * 3
    assert cost["seconds_per_epoch"].tolist() == pytest.approx([10 / 3] * 3, rel=1e-5)  # %.6g
    assert cost["ratio"].tolist() == pytest.approx([1.0] * 3)


def test_the_unsupervised_routes_reach_metrics_and_readme(synthetic_study):
    root, study = synthetic_study(0.0)
    layout = Layout(root / "results")
    path = layout.path(UNSUPERVISED_DONE, profile=study.profile)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_unsupervised()))
    (path.parent / "unsupervised.png").write_bytes(b"png")
    make_report(root / "params.yaml", results=root / "results", figures=True, panel=False)
    metrics = json.loads(layout.path(METRICS, profile=study.profile).read_text())
    assert metrics["unsupervised"]["neuralef"]["miou"] == 0.21
    assert metrics["unsupervised"]["kmeans"]["seconds_per_image"] == pytest.approx(0.02)
    readme = layout.path(README, profile=study.profile).read_text()
    assert "## Unsupervised segmentation (test)" in readme
    assert "unsupervised/unsupervised.png" in readme  # a figure beside the README
    assert "eigenfunctions.png" not in readme  # not written, not linked
    table = pd.read_csv(layout.path(TABLES, profile=study.profile) / "unsupervised.csv")
    assert len(table) == 6


def test_the_spread_over_seeds_is_tabled_and_said():
    report = _unsupervised()
    for route, values in (("kmeans", (0.19, 0.17, 0.21)), ("neuralef", (0.21, 0.25, 0.29))):
        report[route]["seeds"] = {str(s): {"miou": v} for s, v in enumerate(values)}
    table = unsupervised_table(report).set_index(["route", "matching"])
    assert table.loc[("kmeans", "hungarian"), "seeds"] == 3
    assert table.loc[("neuralef", "hungarian"), "miou_mean"] == pytest.approx(0.25)
    assert table.loc[("neuralef", "hungarian"), "miou_sd"] == pytest.approx(0.04)
    assert table.loc[("eigsh", "hungarian"), "seeds"] == 1  # no repeats: its one score
    assert np.isnan(table.loc[("eigsh", "hungarian"), "miou_sd"])
    text = unsupervised_text(report)
    assert "Over 3 seeds" in text and "neuralef K = 11 0.250 +- 0.040" in text
    assert "mIoU 0.210 vs 0.220 (-1.0 points)" in text  # eigsh has one seed: the main fits
    assert "eigsh K = 11" not in text.split("Over 3 seeds")[1]  # one seed: no spread claimed
    report["eigsh"]["seeds"] = {str(s): {"miou": v} for s, v in enumerate((0.22, 0.24, 0.26))}
    text = unsupervised_text(report)
    assert "0.250 +- 0.040 vs 0.240 +- 0.020 over 3 and 3 seeds (+1.0 points" in text
