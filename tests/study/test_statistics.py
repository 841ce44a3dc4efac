"""Seed statistics against scipy: t intervals and Welch's comparison."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from cheeger.study.statistics import summarize, t_interval, welch_difference

samples = st.lists(st.floats(-10, 10, allow_nan=False), min_size=2, max_size=8).filter(
    lambda xs: np.std(xs) > 1e-6)  # fmt: skip


@given(samples, st.sampled_from([0.9, 0.95, 0.99]))
def test_t_interval_matches_scipy(values, confidence):
    row = t_interval(values, confidence)
    low, high = stats.t.interval(confidence, len(values) - 1, loc=np.mean(values),
                                 scale=stats.sem(values))  # fmt: skip
    assert row["n"] == len(values)
    assert row["mean"] == pytest.approx(np.mean(values), abs=1e-9)
    assert row["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-9, abs=1e-12)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), rel=1e-9, abs=1e-9)


def test_t_interval_leaves_out_undefined_values_and_never_fakes_a_width():
    row = t_interval([0.5, None, float("nan"), 0.7])
    assert row["n"] == 2 and row["mean"] == pytest.approx(0.6)
    single = t_interval([0.5])
    assert single["n"] == 1 and single["mean"] == 0.5 and math.isnan(single["ci_low"])
    assert t_interval([])["n"] == 0 and math.isnan(t_interval([])["mean"])
    with pytest.raises(ValueError, match="confidence"):
        t_interval([1.0, 2.0], 1.0)


@settings(max_examples=50)
@given(samples, samples)
def test_welch_difference_matches_scipy(a, b):
    result = welch_difference(a, b)
    test = stats.ttest_ind(b, a, equal_var=False)
    low, high = test.confidence_interval(0.95)
    assert result["difference"] == pytest.approx(np.mean(b) - np.mean(a), abs=1e-9)
    assert result["p_value"] == pytest.approx(test.pvalue, rel=1e-6, abs=1e-12)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((low, high), rel=1e-6,
                                                                  abs=1e-9)  # fmt: skip


def test_beyond_noise_needs_separate_intervals_and_a_significant_difference():
    assert welch_difference([0.50, 0.51, 0.52], [0.60, 0.61, 0.62])["beyond_noise"]
    close = welch_difference([0.50, 0.55, 0.60], [0.52, 0.57, 0.62])
    assert close["overlap"] and not close["beyond_noise"]
    undefined = welch_difference([0.5], [0.6, 0.7])
    assert math.isnan(undefined["ci_low"]) and not undefined["beyond_noise"]
    exact = welch_difference([0.5, 0.5], [0.6, 0.6])
    assert exact["beyond_noise"] and exact["ci_low"] == exact["ci_high"]


def test_summarize_groups():
    frame = pd.DataFrame({"head": ["a", "a", "a", "b", "b"], "metric": "m",
                          "value": [1.0, 2.0, 3.0, 5.0, None]})  # fmt: skip
    table = summarize(frame, ["head", "metric"]).set_index("head")
    assert table.loc["a", "mean"] == 2.0 and table.loc["a", "n"] == 3
    assert table.loc["b", "n"] == 1 and math.isnan(table.loc["b", "std"])
