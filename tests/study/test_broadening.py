"""The broadening measurement (cheeger.study.broadening): reference, rules, table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cheeger.cli import main
from cheeger.linalg import eigsh
from cheeger.study.broadening import (
    COLUMNS,
    BroadeningConfig,
    _bump_filter,
    broadening_sweep,
    image8_laplacian,
    reference_gradient,
    write_table,
)
from cheeger.study.tables import broadening_table


def _blocks(H: int = 12, W: int = 15) -> np.ndarray:
    """Four noisy colour blocks: a nearly (not exactly) cut graph, bottom gaps 3e-4..2e-3."""
    rng = np.random.default_rng(0)
    image = np.full((H, W, 3), 120.0)
    for b in range(4):
        rows = slice(0, H // 2) if b < 2 else slice(H // 2, H)
        cols = slice(0, W // 2) if b % 2 == 0 else slice(W // 2, W)
        image[rows, cols, b % 3] += 60 if b < 3 else -60
    return np.clip(image + rng.normal(0, 10, image.shape), 0, 255).astype(np.uint8)


def test_reference_agrees_with_exact_autograd_on_a_well_separated_matrix():
    g = torch.Generator().manual_seed(0)
    n, k = 24, 5
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    lam = torch.linspace(0.0, 2.0, n, dtype=torch.float64)  # gaps 0.087
    A = (Q * lam) @ Q.T
    A = 0.5 * (A + A.T)
    G, X = (torch.randn(n, 3, generator=g, dtype=torch.float64) for _ in range(2))
    h = _bump_filter(float(lam[k - 1]), g)
    Ar = A.clone().requires_grad_(True)
    values, U = eigsh(Ar, k, 0.0, method="dense")
    (exact,) = torch.autograd.grad((G * (U @ (h(values)[:, None] * (U.T @ X)))).sum(), Ar)
    reference = reference_gradient(A, k, G, X, h)
    # autograd returns the symmetric part of the gradient, as the reference does
    exact = 0.5 * (exact + exact.T)
    assert (reference - exact).norm() / exact.norm() < 1e-10


def test_gap_rule_damps_less_than_rms_rule_on_a_graph_with_small_gaps():
    L = image8_laplacian(_blocks(), (12, 15)).to_dense()
    lam = torch.linalg.eigvalsh(L)
    assert 1e-4 < lam[1:4].diff().min() and lam[3] < 1e-2  # small, but not exact, bottom gaps
    config = BroadeningConfig(sizes=((12, 15),), eps=(1e-2, 1e-3), k=6)
    table = broadening_sweep([("blocks", _blocks())], config)
    error = table.set_index(["rule", "eps"])["rel_error"]
    for eps in config.eps:
        assert error["gap", eps] < 0.2 * error["rms", eps], (eps, error)


def test_sweep_and_report_table_have_the_expected_columns(tmp_path):
    config = BroadeningConfig(sizes=((6, 8), (8, 10)), eps=(1e-1, 1e-3), k=4)
    images = [("a", _blocks()), ("b", _blocks()[::-1].copy())]
    sweep = broadening_sweep(images, config)
    assert list(sweep.columns) == list(COLUMNS)
    assert len(sweep) == 2 * 2 * 2 * 2  # sizes x images x rules x eps
    assert np.isfinite(sweep["rel_error"]).all() and (sweep["rel_error"] >= 0).all()
    table = broadening_table(sweep)
    assert list(table.columns) == ["size", "loss", "rule", "eps", "median_rel_error",
                                   "max_rel_error", "eps_abs"]  # fmt: skip
    assert len(table) == 2 * 2 * 2  # sizes x rules x eps
    row = table[(table["size"] == "6x8") & (table["rule"] == "gap") & (table["eps"] == 1e-1)]
    errors = sweep[(sweep["size"] == "6x8") & (sweep["rule"] == "gap") & (sweep["eps"] == 1e-1)]
    assert float(row["max_rel_error"].iloc[0]) == errors["rel_error"].max()
    path = write_table(sweep, tmp_path / "out" / "broadening.csv")
    pd.testing.assert_frame_equal(pd.read_csv(path), sweep, check_exact=False, rtol=1e-9)


def test_config_rejects_a_k_larger_than_a_graph():
    with pytest.raises(Exception, match=r"study\.broadening\.k"):
        BroadeningConfig(sizes=((2, 3),), k=6)


def test_cli_names_missing_prepared_images(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("study: {}\n")
    status = main(["broadening", "--params", str(params), "--prepared", str(tmp_path / "nope"),
                   "--out", str(tmp_path / "b.csv")])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1
    assert "nope/test/images.npy do not exist" in err or "params" in err, err
