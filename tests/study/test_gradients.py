"""The gradient stability sweep: planted spectra, exact gradients against finite differences,
the 1/gap growth of the exact backward and the bound of the broadened one."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from cheeger.cli import main
from cheeger.config import ParamsError
from cheeger.linalg import eigsh
from cheeger.study.gradients import (
    GradientsConfig,
    _haar_orthogonal,
    _measure,
    gradient_sweep,
    planted_spectrum,
)


@pytest.mark.parametrize("pair", ["inside", "boundary"])
def test_planted_spectrum(pair):
    lam = planted_spectrum(20, 5, 1e-6, pair, max_gap=0.1)
    first = 3 if pair == "inside" else 4
    assert lam.shape == (20,) and torch.all(lam[1:] > lam[:-1])
    assert lam[first + 1] - lam[first] == pytest.approx(1e-6, rel=1e-6)
    others = torch.cat([lam[:first], lam[first + 2 :]])
    assert (others - lam[first]).abs().min() >= 0.1 and lam[0] == 0 and lam[-1] == 2


def _loss(A, k, loss, G, X):
    lam, U = torch.linalg.eigh(A)
    lam, U = lam[:k], U[:, :k]
    pivot = U.abs().argmax(0)
    U = U * torch.sign(U[pivot, torch.arange(k)])  # eigsh's sign convention
    if loss == "eigenvector":
        return (G[:, :k] * U).sum()
    return (G[:, : X.shape[1]] * (U @ (torch.exp(-lam)[:, None] * (U.mT @ X)))).sum()


@pytest.mark.parametrize("loss", ["eigenvector", "filtered"])
@pytest.mark.parametrize("pair", ["inside", "boundary"])
def test_exact_backward_matches_finite_differences(loss, pair):
    gen = torch.Generator().manual_seed(3)
    n, k = 12, 3
    Q = _haar_orthogonal(n, gen)
    A = (Q * planted_spectrum(n, k, 1e-2, pair, max_gap=0.1)) @ Q.mT
    A = (A + A.mT) / 2
    G = torch.randn(n, k, generator=gen, dtype=torch.float64)
    X = torch.randn(n, k, generator=gen, dtype=torch.float64)
    A_req = A.clone().requires_grad_(True)
    lam, U = eigsh(A_req, k, 0.0, method="dense")
    value = (G[:, :k] * U).sum() if loss == "eigenvector" else (
        G[:, :k] * (U @ (torch.exp(-lam)[:, None] * (U.mT @ X)))).sum()  # fmt: skip
    (grad,) = torch.autograd.grad(value, A_req)
    for _ in range(3):
        E = torch.randn(n, n, generator=gen, dtype=torch.float64)
        E = (E + E.mT) / 2
        h = 1e-6
        numeric = (_loss(A + h * E, k, loss, G, X) - _loss(A - h * E, k, loss, G, X)) / (2 * h)
        assert float((grad * E).sum()) == pytest.approx(float(numeric), rel=1e-5, abs=1e-8)


@pytest.fixture(scope="module")
def sweep():
    return gradient_sweep(GradientsConfig(n=24, k=4, gap_range=(1e-8, 1e-1), gaps=8,
                                          eps=(0.0, 1e-3, 1e-2), trials=2))  # fmt: skip


def _mean(sweep, pair, loss, eps):
    rows = sweep[(sweep["pair"] == pair) & (sweep["loss"] == loss) & (sweep["eps"] == eps)]
    return rows.groupby("gap")["grad_norm"].mean().sort_index()


def test_sweep_grid(sweep):
    assert len(sweep) == 2 * 2 * 2 * 8 * 3
    assert sorted(sweep["gap"].unique())[0] == pytest.approx(1e-8)
    assert np.isfinite(sweep["grad_norm"]).all()


@pytest.mark.parametrize(("pair", "loss"), [("boundary", "eigenvector"),
                                            ("boundary", "filtered"), ("inside", "eigenvector")])
def test_exact_backward_grows_like_one_over_the_gap(sweep, pair, loss):
    norms = _mean(sweep, pair, loss, 0.0)
    small = norms.iloc[:5]  # gaps 1e-8 .. ~1e-5
    slope = np.polyfit(np.log(small.index), np.log(small.to_numpy()), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.02)


def test_basis_invariant_loss_is_stable_when_the_pair_is_inside(sweep):
    norms = _mean(sweep, "inside", "filtered", 0.0)
    assert norms.max() / norms.min() < 1.5  # the split of the pair does not matter


def test_broadened_backward_respects_its_bound_and_saturates(sweep):
    broadened = sweep[sweep["eps"] > 0]
    assert (broadened["grad_norm"] <= broadened["bound"] * (1 + 1e-9)).all()
    assert math.isinf(sweep.loc[sweep["eps"] == 0, "bound"].iloc[0])
    for eps in (1e-3, 1e-2):
        norms = _mean(sweep, "boundary", "eigenvector", eps)
        tiny = norms[norms.index < eps * 1e-3]
        assert tiny.max() / tiny.min() < 1.001  # below the broadening the norm is flat
        exact = _mean(sweep, "boundary", "eigenvector", 0.0)
        assert norms.iloc[0] < exact.iloc[0] * 1e-3


def test_config_checks():
    with pytest.raises(ParamsError, match=r"study\.gradients\.k: expected 2 <= k < n - 1"):
        GradientsConfig(n=8, k=7)
    with pytest.raises(ParamsError, match=r"study\.gradients\.gap_range"):
        GradientsConfig(gap_range=(1e-3, 1.5))
    assert GradientsConfig(gaps=3, gap_range=(1e-4, 1e-2)).gap_values() == pytest.approx(
        [1e-2, 1e-3, 1e-4])


def test_measure_reports_the_parts_of_the_bound():
    A = torch.diag(torch.tensor([0.0, 1.0, 1.0 + 1e-9, 2.0], dtype=torch.float64))
    G = torch.ones(4, 2, dtype=torch.float64)
    _, grad, g_lam, g_U = _measure(A, 2, 1e-2, "eigenvector", G, G)
    assert g_lam == 0.0 and g_U == pytest.approx(math.sqrt(8))
    assert grad <= g_U / (2 * 1e-2 * float(A.norm()) / 2) + 1e-12


def test_cli_writes_the_sweep(tmp_path, repo_root, capsys):
    params = tmp_path / "params.yaml"
    text = (repo_root / "params.yaml").read_text()
    params.write_text(text.replace("    trials: 3\n", "    trials: 1\n").replace(
        "    gaps: 15\n", "    gaps: 2\n"))  # fmt: skip
    out = tmp_path / "g" / "gradients.csv"
    assert main(["gradients", "--params", str(params), "--profile", "camvid", "--out",
                 str(out), "--threads", "1"]) == 0  # fmt: skip
    table = pd.read_csv(out)
    assert len(table) == 1 * 2 * 2 * 2 * 4 and "gradient sweep" in capsys.readouterr().out
