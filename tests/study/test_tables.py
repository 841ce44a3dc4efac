"""Report tables: head statistics, verdict direction, gradient summary, readable formats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cheeger.study.tables import (
    comparison_table,
    display,
    gradients_table,
    heads_table,
    write_table,
)


def _scalars(values: dict[tuple[str, str], list[float]], split: str = "test") -> pd.DataFrame:
    rows = [{"head": head, "seed": seed, "split": split, "metric": metric, "value": v}
            for (head, metric), vs in values.items() for seed, v in enumerate(vs)]  # fmt: skip
    return pd.DataFrame(rows)


def test_heads_table_orders_metrics_and_keeps_splits_apart():
    scalars = pd.concat([
        _scalars({("conv", "stray_fraction"): [0.1, 0.2], ("conv", "miou"): [0.5, 0.6]}),
        _scalars({("conv", "miou"): [0.9, 0.9]}, split="val"),
    ])  # fmt: skip
    table = heads_table(scalars, "test")
    assert list(table["metric"]) == ["miou", "stray_fraction"]
    assert table.loc[0, "mean"] == pytest.approx(0.55)


def test_verdict_follows_the_direction_of_each_metric():
    scalars = _scalars({("conv", "miou"): [0.5, 0.51, 0.52],
                        ("spectral", "miou"): [0.6, 0.61, 0.62],
                        ("conv", "excess_components"): [5.0, 5.1, 5.2],
                        ("spectral", "excess_components"): [9.0, 9.1, 9.2],
                        ("conv", "boundary_miou"): [0.3, 0.4, 0.5],
                        ("spectral", "boundary_miou"): [0.35, 0.45, 0.55]})  # fmt: skip
    table = comparison_table(scalars, "test", "conv", "spectral").set_index("metric")
    assert table.loc["miou", "verdict"] == "better"
    assert table.loc["excess_components", "verdict"] == "worse"  # more fragments is worse
    assert table.loc["boundary_miou", "verdict"] == "within noise"
    assert table.loc["pixel_accuracy", "verdict"] == "within noise"  # no data: no claim


def test_gradients_table_measures_the_slope():
    gaps = np.logspace(-1, -8, 8)
    sweep = pd.DataFrame([{"pair": "boundary", "loss": "eigenvector", "eps": eps, "gap": g,
                           "grad_norm": 3.0 / g if eps == 0 else 1 / eps,
                           "bound": np.inf if eps == 0 else 2 / eps}
                          for g in gaps for eps in (0.0, 1e-2)])  # fmt: skip
    table = gradients_table(sweep).set_index("eps")
    assert table.loc[0.0, "slope_small_gaps"] == pytest.approx(-1.0)
    assert table.loc[0.0, "grad_norm_at_smallest_gap"] == pytest.approx(3e8)
    assert table.loc[0.01, "slope_small_gaps"] == pytest.approx(0.0, abs=1e-9)
    assert table.loc[0.01, "max_norm_over_bound"] == pytest.approx(0.5)
    assert np.isnan(table.loc[0.0, "max_norm_over_bound"])


def test_display_and_write(tmp_path):
    table = pd.DataFrame({"metric": ["miou", "miou", "boundary_miou"],
                          "head": ["conv", "spectral", "conv"], "n": [3, 3, 1],
                          "mean": [0.5, 0.6, 0.4], "std": [0.01, 0.02, np.nan],
                          "ci_low": [0.47, 0.55, np.nan], "ci_high": [0.53, 0.65, np.nan]})
    shown = display(table, "metric", "head")
    assert list(shown.index) == ["miou", "boundary_miou"]
    assert shown.loc["miou", "spectral"] == "0.600 ± 0.020 [0.550, 0.650]"
    assert shown.loc["boundary_miou", "conv"] == "0.400"  # one seed: no spread shown
    assert pd.isna(shown.loc["boundary_miou", "spectral"])
    paths = write_table(table, tmp_path, "t", shown, caption="a_b")
    assert pd.read_csv(paths["csv"]).shape == (3, 7)
    assert paths["md"].read_text().startswith("a_b\n\n| metric")
    assert r"\caption{a\_b}" in paths["tex"].read_text()
