r"""The NeuralEF objective (seed 001, eq. 5-7): a network learns a kernel's top-K eigenfunctions.

A network ``psi`` maps ``B`` inputs to ``K`` outputs, ``Psi`` ``(B, K)`` (the paper writes its
transpose, ``K x B``). On a mini-batch with kernel matrix ``kappa`` ``(B, B)`` (symmetric) the
paper maximises

.. math::

    \sum_{j=1}^{K} R_{jj} - \beta \sum_{j=1}^{K} \sum_{i=1}^{j-1} \hat R_{ij}^2
    \quad \text{s.t.} \quad \mathbb{E}_{p(f)}[\psi(f) \circ \psi(f)] = \mathbf{1}   \quad (5)

    R = \frac{1}{B^2} \Psi^\top \kappa \Psi, \qquad
    \hat R = \frac{1}{B^2} \operatorname{sg}(\Psi)^\top \kappa \Psi                   \quad (7)

with ``sg`` the stop-gradient. :func:`neuralef_loss` returns the negation (a loss to minimise)
with exactly this ``1/B^2`` scaling:

.. math::

    \mathcal{L} = -\sum_j R_{jj} + \beta \sum_{i<j} \hat R_{ij}^2 .

**Asymmetry.** ``\hat R_{ij} = sg(psi_i)^T kappa psi_j / B^2``: in the pair ``i < j`` only the later
column ``psi_j`` receives the penalty's gradient, pushed away from the (frozen) earlier ``psi_i``;
``psi_1`` feels only the trace term and converges to the top eigenfunction, ``psi_2`` to the top one
``kappa``-orthogonal to it, and so on. Without the stop-gradient the penalty is symmetric in the
columns, so nothing orders them (``tests/losses/test_neuralef.py`` breaks it on purpose).

**Constraint (eq. 5).** ``E[psi_k^2] = 1`` over the data measure; on a batch, ``sum_b psi_bk^2 =
B``. :func:`l2_batch_normalize` enforces it as the paper's last layer ("L2 batch normalisation",
NeuralEF [12]): ``psi_bk <- psi_bk sqrt(B) / ||psi_k||``.

**Scale and beta.** With that normalisation ``R_jj = (psi_j^T kappa psi_j / ||psi_j||^2) / B``: the
Rayleigh quotient of ``kappa / B``, the Monte-Carlo estimate of the integral operator. At the
optimum the ordering needs ``beta > (mu_i - mu_j) / mu_i^2`` for ``i < j`` (``mu`` the eigenvalues
of ``kappa / B``; expand ``psi_j`` in the eigenbasis with ``psi_i`` exact). A kernel whose entries
do not scale with ``B`` (a Gram matrix of a kernel function) has ``mu = O(1)``; the normalised
adjacency ``D^{-1/2} A D^{-1/2}`` of a batch graph has eigenvalues in ``[-1, 1]`` and hence ``mu =
O(1/B)``: pass ``B D^{-1/2} A D^{-1/2}`` to keep ``beta`` independent of the batch size (this is
what :mod:`cheeger.unsupervised.neuralef` does).

The kernel may be dense or sparse COO; the product ``kappa Psi`` is ``O(nnz K)`` for a sparse one.
"""

from __future__ import annotations

import math

import torch

__all__ = ["l2_batch_normalize", "neuralef_loss"]


def l2_batch_normalize(psi: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Scale each column to ``sum_b psi_bk^2 = B`` (eq. 5's constraint on a batch).

    Args:
        psi: ``(B, K)`` network outputs, ``B >= 1``.
        eps: floor on a column's norm, so an all-zero column stays zero instead of NaN.

    Returns:
        ``(B, K)``, differentiable in ``psi``.

    Raises:
        ValueError: if ``psi`` is not 2-D with at least one row.

    Example:
        >>> psi = l2_batch_normalize(torch.tensor([[3.0, 1.0], [4.0, 1.0]]))
        >>> [round(v, 4) for v in psi.pow(2).sum(0).tolist()]
        [2.0, 2.0]
    """
    if psi.dim() != 2 or psi.shape[0] < 1:
        raise ValueError(
            f"l2_batch_normalize: psi must be (B, K) with B >= 1, got {tuple(psi.shape)}"
        )
    # psi_k sqrt(B) / ||psi_k||
    norm = psi.pow(2).sum(0, keepdim=True).sqrt().clamp_min(eps)  # (1, K)
    return psi * (math.sqrt(psi.shape[0]) / norm)


def _kernel_apply(kernel: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """``kernel @ psi`` for a dense or sparse COO ``(B, B)`` kernel, ``(B, K)``."""
    if not kernel.is_sparse:
        return kernel @ psi
    kernel = kernel if kernel.is_coalesced() else kernel.coalesce()
    rows, cols = kernel.indices()
    gathered = psi.index_select(0, cols) * kernel.values()[:, None]  # (nnz, K)
    return psi.new_zeros(psi.shape).index_add(0, rows, gathered)  # (B, K)


def _check(psi: torch.Tensor, kernel: torch.Tensor, beta: float) -> None:
    if psi.dim() != 2:
        raise ValueError(f"neuralef_loss: psi must be (B, K), got {tuple(psi.shape)}")
    batch = psi.shape[0]
    if psi.shape[1] > batch:
        raise ValueError(f"neuralef_loss: K = {psi.shape[1]} eigenfunctions exceed the B = "
                         f"{batch} nodes of the batch (psi {tuple(psi.shape)})")  # fmt: skip
    if kernel.dim() != 2 or tuple(kernel.shape) != (batch, batch):
        raise ValueError(
            f"neuralef_loss: kernel must be (B, B) = {(batch, batch)} to match psi "
            f"{tuple(psi.shape)}, got {tuple(kernel.shape)}"
        )
    if kernel.is_sparse and kernel.layout != torch.sparse_coo:
        raise ValueError(f"neuralef_loss: a sparse kernel must be COO, got {kernel.layout}")
    if not (math.isfinite(beta) and beta >= 0):
        raise ValueError(f"neuralef_loss: beta must be finite and >= 0, got {beta!r}")
    if not torch.isfinite(psi).all():
        raise ValueError("neuralef_loss: psi has NaN or infinite entries")
    values = kernel.coalesce().values() if kernel.is_sparse else kernel
    if not torch.isfinite(values).all():
        raise ValueError("neuralef_loss: kernel has NaN or infinite entries")


def neuralef_loss(psi: torch.Tensor, kernel: torch.Tensor, beta: float) -> torch.Tensor:
    r"""Negated NeuralEF objective, ``-sum_j R_jj + beta sum_{i<j} R_hat_ij^2`` (eq. 5 and 7).

    ``R = Psi^T kappa Psi / B^2`` and ``R_hat = sg(Psi)^T kappa Psi / B^2``; see the module
    docstring for the scale and the condition on ``beta`` that orders the eigenfunctions.

    Args:
        psi: ``(B, K)`` outputs, already L2-batch-normalised (:func:`l2_batch_normalize`; not
            checked, so a caller may also pass quantised outputs normalised the same way).
        kernel: ``(B, B)`` symmetric kernel matrix (symmetry not checked), dense or sparse COO,
            same dtype and device as ``psi``; it receives no gradient use (treat it as data).
        beta: penalty weight ``>= 0``.

    Returns:
        Scalar loss, differentiable in ``psi``.

    Raises:
        ValueError: on mismatched shapes, a non-COO sparse layout, a negative or non-finite beta,
            or NaN/inf in ``psi`` or ``kernel``.

    Example:
        >>> kernel = torch.diag(torch.tensor([4.0, 2.0, 1.0]))  # eigenvectors e_1, e_2, e_3
        >>> exact = l2_batch_normalize(torch.eye(3)[:, :2])
        >>> mixed = l2_batch_normalize(torch.tensor([[1.0, 1.0], [1.0, -1.0], [0.0, 0.0]]))
        >>> bool(neuralef_loss(exact, kernel, 1.0) < neuralef_loss(mixed, kernel, 1.0))
        True
    """
    _check(psi, kernel, beta)
    batch = psi.shape[0]
    kernel_psi = _kernel_apply(kernel.detach(), psi)  # (B, K): kappa psi_j, graph through psi_j
    # R_jj = psi_j^T kappa psi_j / B^2
    trace = (psi * kernel_psi).sum() / batch**2
    # R_hat_ij = sg(psi_i)^T kappa psi_j / B^2, penalised for i < j only
    r_hat = psi.detach().T @ kernel_psi / batch**2  # (K, K)
    penalty = torch.triu(r_hat, diagonal=1).pow(2).sum()
    return -trace + beta * penalty
