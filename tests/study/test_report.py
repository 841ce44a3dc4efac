"""The report on synthetic studies with planted effects: numbers, verdicts, files."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cheeger.cli import main
from cheeger.study.layout import EVAL, Layout, StudyFileError
from cheeger.study.report import make_report

TABLES = ("heads_test", "comparison_test", "per_class_iou_test", "ablation", "scaling",
          "gradients")  # fmt: skip
FIGURES = ("curves", "heads_test", "per_class_iou", "scaling", "gradients", "ablation")


def _report(root, figures=False):
    return make_report(root / "params.yaml", results=root / "results", out=root / "out",
                       figures=figures, panel=False)  # fmt: skip


def _values(root, study, head, metric, split="test"):
    layout = Layout(root / "results")
    paths = [layout.path(EVAL, profile=study.profile, head=head, seed=seed, split=split)
             for seed in study.seeds]  # fmt: skip
    return [json.loads(path.read_text())[metric] for path in paths]


def test_planted_improvement_is_found_with_the_right_numbers(synthetic_study):
    root, study = synthetic_study(effect=0.1)
    metrics = _report(root)
    for head in ("conv", "spectral"):
        values = _values(root, study, head, "miou")
        row = metrics[head]["miou"]
        half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(3)
        assert row["mean"] == pytest.approx(np.mean(values), abs=1e-12)
        assert row["std"] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
        assert row["ci_low"] == pytest.approx(np.mean(values) - half, abs=1e-12)
    difference = metrics["spectral_minus_conv"]["miou"]
    assert difference["difference"] == pytest.approx(0.1, abs=0.011)
    assert difference["beyond_noise"] is True and difference["p_value"] < 1e-3
    readme = (root / "out" / "README.md").read_text()
    assert "**Yes.** The spectral head is better than the conv head on the test split." in readme
    assert "mIoU: spectral 0.6" in readme and "**better**" in readme
    assert "## Protocol" in readme and "[0, 1, 2] for each of ['conv', 'spectral']" in readme
    assert metrics == json.loads((root / "out" / "metrics.json").read_text())


def test_tables_and_figures_are_written_in_every_format(synthetic_study):
    root, _ = synthetic_study(effect=0.1)
    _report(root, figures=True)
    out = root / "out"
    for name in TABLES:
        for suffix in ("csv", "md", "tex"):
            assert (out / "tables" / f"{name}.{suffix}").stat().st_size > 0, (name, suffix)
    for name in FIGURES:
        for suffix in ("png", "pdf"):
            assert (out / "figures" / f"{name}.{suffix}").stat().st_size > 1000, (name, suffix)
    heads = pd.read_csv(out / "tables" / "heads_test.csv")
    assert set(heads["head"]) == {"conv", "spectral"} and (heads["n"] == 3).all()
    per_class = pd.read_csv(out / "tables" / "per_class_iou_test.csv")
    absent = per_class.groupby("class")["n"].max()
    assert absent.min() == 0  # the class absent everywhere is left out, not counted as 0
    ablation = pd.read_csv(out / "tables" / "ablation.csv")
    baseline = ablation[ablation["baseline"] & (ablation["metric"] == "miou")]
    assert set(baseline["axis"]) == {"alpha", "filter"} and (baseline["n"] == 2).all()
    assert set(ablation.loc[~ablation["baseline"], "setting"]) == {"0.0", "1.0", "heat"}
    curves = pd.read_csv(out / "tables" / "curves_mean.csv")
    assert list(curves["epoch"]) == [1, 2, 3] and "spectral_val_miou" in curves
    tex = (out / "tables" / "heads_test.tex").read_text()
    assert r"\begin{tabular}" in tex and r"$\pm$" in tex
    readme = (out / "README.md").read_text()
    assert all(f"figures/{name}.png" in readme for name in FIGURES)


@pytest.mark.parametrize(
    ("effect", "answer"),
    [(0.0, "**No.** The spectral head is not better than the conv head beyond seed noise"),
     (-0.1, "**No: it is worse.**")],
)  # fmt: skip
def test_no_effect_and_harm_are_reported_plainly(synthetic_study, effect, answer):
    root, _ = synthetic_study(effect=effect)
    metrics = _report(root)
    assert answer in (root / "out" / "README.md").read_text()
    assert metrics["spectral_minus_conv"]["miou"]["beyond_noise"] is (effect != 0.0)


def test_one_seed_gives_no_answer_instead_of_a_false_one(synthetic_study):
    def one_seed(params):
        params["profiles"]["embedded"].update(seeds=[0], ablation_seeds=[0])

    root, _ = synthetic_study(effect=0.1, edit=one_seed)
    metrics = _report(root)
    assert "No answer beyond noise is possible" in (root / "out" / "README.md").read_text()
    assert metrics["conv"]["miou"]["std"] is None  # undefined, written as null, never NaN


def test_report_is_deterministic(synthetic_study):
    root, _ = synthetic_study(effect=0.05)
    _report(root)
    first = {p.name: p.read_bytes() for p in (root / "out").glob("*.*")}
    _report(root)
    assert first == {p.name: p.read_bytes() for p in (root / "out").glob("*.*")}


def test_missing_evaluation_is_an_error_naming_the_file(synthetic_study, capsys):
    root, _ = synthetic_study(effect=0.1)
    missing = Layout(root / "results").path(EVAL, profile="embedded", head="spectral", seed=2,
                                            split="test")  # fmt: skip
    missing.unlink()
    with pytest.raises(StudyFileError, match=f"{missing}: missing"):
        _report(root)
    status = main(["report", "--params", str(root / "params.yaml"), "--results",
                   str(root / "results"), "--out", str(root / "out"), "--no-panel"])  # fmt: skip
    assert status == 1
    assert capsys.readouterr().err.strip() == (f"cheeger report: error: {missing}: missing (run "
                                               "the pipeline stage that writes it)")  # fmt: skip


def test_the_model_row_describes_the_encoder_the_settings_choose():
    from cheeger.config import ModelConfig
    from cheeger.study.report import _backbone

    assert _backbone(ModelConfig(depth=2, width=4)).startswith("U-Net depth 2, width 4")
    lite = _backbone(ModelConfig(encoder="efficientnet_lite0", decoder_width=16,
                                 features="results/x/features"))  # fmt: skip
    assert lite.startswith("EfficientNet-Lite0 encoder (ImageNet weights, frozen")
    assert "`results/x/features`" in lite and lite.endswith("FPN decoder width 16")
    tuned = _backbone(ModelConfig(encoder="efficientnet_lite0", freeze_encoder=False))
    assert "fine-tuned" in tuned and "cached" not in tuned
