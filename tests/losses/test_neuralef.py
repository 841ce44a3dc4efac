"""NeuralEF objective: float64 numpy oracle (value, gradient), recovery of the top eigenvectors."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

import cheeger.losses.neuralef as neuralef_module
from cheeger.losses import l2_batch_normalize, neuralef_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def _oracle(psi: np.ndarray, kernel: np.ndarray, beta: float) -> tuple[float, np.ndarray]:
    """Eq. 7 value and its stop-gradient gradient, written out in numpy float64."""
    batch, k = psi.shape
    r = psi.T @ kernel @ psi / batch**2
    value = -np.trace(r) + beta * sum(r[i, j] ** 2 for j in range(k) for i in range(j))
    grad = -2 * kernel @ psi / batch**2
    for j in range(k):
        for i in range(j):  # d/dpsi_j of beta R_ij^2 with psi_i frozen
            grad[:, j] += beta * 2 * r[i, j] * kernel @ psi[:, i] / batch**2
    return value, grad


def _kernel(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n))
    return (x + x.T) / 2


def test_value_and_gradient_match_oracle():
    rng = np.random.default_rng(0)
    psi_np = rng.normal(size=(12, 4))
    kernel_np = _kernel(12, 1)
    psi = torch.tensor(psi_np, requires_grad=True)
    loss = neuralef_loss(psi, torch.tensor(kernel_np), 0.7)
    loss.backward()
    value, grad = _oracle(psi_np, kernel_np, 0.7)
    assert loss.item() == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(psi.grad.numpy(), grad, rtol=1e-10, atol=1e-14)


def test_sparse_kernel_matches_dense():
    kernel = torch.tensor(_kernel(10, 2))
    kernel[kernel.abs() < 0.5] = 0.0
    psi_dense = torch.randn(10, 3, dtype=torch.float64, requires_grad=True)
    psi_sparse = psi_dense.detach().clone().requires_grad_(True)
    dense = neuralef_loss(psi_dense, kernel, 0.3)
    sparse = neuralef_loss(psi_sparse, kernel.to_sparse(), 0.3)
    dense.backward()
    sparse.backward()
    assert sparse.item() == pytest.approx(dense.item(), rel=1e-12)
    torch.testing.assert_close(psi_sparse.grad, psi_dense.grad, rtol=1e-12, atol=1e-14)


def test_l2_batch_normalize_constraint():
    psi = l2_batch_normalize(torch.randn(30, 5, dtype=torch.float64))
    torch.testing.assert_close(psi.pow(2).sum(0), torch.full((5,), 30.0, dtype=torch.float64))
    assert torch.equal(l2_batch_normalize(torch.zeros(4, 2)), torch.zeros(4, 2))


def _fit(kernel: torch.Tensor, k: int, beta: float, steps: int, loss=neuralef_loss) -> torch.Tensor:
    torch.manual_seed(0)
    raw = torch.randn(kernel.shape[0], k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([raw], lr=0.02)
    for _ in range(steps):
        opt.zero_grad()
        loss(l2_batch_normalize(raw), kernel, beta).backward()
        opt.step()
    return l2_batch_normalize(raw.detach())


def _spectral_kernel(n: int = 60) -> tuple[torch.Tensor, np.ndarray]:
    """``B Q diag(mu) Q^T``: the operator ``kernel / B`` has eigenvalues ``mu`` (well separated)."""
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    mu = np.concatenate([[1.0, 0.8, 0.6, 0.45], 0.3 * 0.8 ** np.arange(n - 4)])
    kernel = n * (q * mu) @ q.T
    return torch.tensor(kernel), kernel


def test_recovers_top_eigenvectors_in_order():
    kernel, kernel_np = _spectral_kernel()
    psi = _fit(kernel, 3, beta=1.0, steps=3000).numpy()
    _, vectors = np.linalg.eigh(kernel_np)  # ascending
    top = vectors[:, ::-1][:, :3]
    cos = np.abs((psi / np.linalg.norm(psi, axis=0)).T @ top).diagonal()
    assert (cos > 0.99).all(), cos


def test_without_stop_gradient_ordering_is_lost():
    """The symmetric penalty (no stop-gradient) on the same fit: column j is not eigenvector j."""

    def symmetric(psi, kernel, beta):
        batch = psi.shape[0]
        r = psi.T @ kernel @ psi / batch**2
        return -r.diagonal().sum() + beta * torch.triu(r, diagonal=1).pow(2).sum()

    kernel, kernel_np = _spectral_kernel()
    psi = _fit(kernel, 3, beta=1.0, steps=3000, loss=symmetric).numpy()
    _, vectors = np.linalg.eigh(kernel_np)
    top = vectors[:, ::-1][:, :3]
    cos = np.abs((psi / np.linalg.norm(psi, axis=0)).T @ top).diagonal()
    assert not (cos > 0.99).all(), cos


@pytest.mark.parametrize(
    ("psi", "kernel", "beta", "match"),
    [
        (torch.zeros(3, 2), torch.zeros(4, 4), 1.0, "kernel must be"),
        (torch.zeros(3), torch.zeros(3, 3), 1.0, "psi must be"),
        (torch.zeros(3, 2), torch.zeros(3, 3), -1.0, "beta"),
        (torch.full((3, 2), float("nan")), torch.zeros(3, 3), 1.0, "psi has NaN"),
        (torch.zeros(3, 2), torch.full((3, 3), float("nan")), 1.0, "kernel has NaN"),
        (torch.zeros(3, 5), torch.eye(3), 1.0, r"K = 5 eigenfunctions exceed the B = 3 nodes"),
    ],
)
def test_bad_input(psi, kernel, beta, match):
    with pytest.raises(ValueError, match=match):
        neuralef_loss(psi, kernel, beta)


def test_docstring_examples():
    result = doctest.testmod(neuralef_module, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0
