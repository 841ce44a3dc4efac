"""Gradient fidelity of the broadened backward on real-image graphs, per rule for ``eps``.

The broadened factor ``(l_i - l_j) / ((l_i - l_j)^2 + eps^2)`` replaces ``1 / (l_i - l_j)`` and is
off by the relative ``eps^2 / gap^2``: harmless when ``eps`` is far below the bottom gaps, a
damping of every eigenvector gradient when it is not. This script measures, on 8-neighbour colour
graphs of CamVid frames at the spectral head's sizes (23 x 30: stride 8 at 180 x 240; 46 x 60:
stride 4), how far the broadened gradient is from the exact one (``eps = 0``, finite here because
the bottom eigenvalues of these graphs are distinct) for

* the head's loss, basis-invariant: ``<G, U diag(h(lambda)) U^T X>`` with a smooth random filter
  ``h`` (a sum of random Gaussian bumps on ``[0, lambda_k]``), random evidence ``X (n, 11)`` and
  cotangent ``G``;
* a raw eigenvector loss ``<G, U>`` (what a basis-dependent consumer would see),

and for two rules that turn the setting into an absolute ``eps``:

* ``rms``: ``eps * ||A||_F / sqrt(n)`` (the RMS eigenvalue, ~1 for ``L_sym``; today's rule);
* ``gap``: ``eps * (lambda_k - lambda_1) / (k - 1)``, the computed block's mean gap, so the
  damping follows the graph's own spectrum (4x smaller gaps at stride 4, smaller still on trained
  graphs); ``eigsh(..., eps_rule="gap")``.

Both paths are the dense one (whole spectrum exact), so the error is the broadening's alone; it is
measured on the graph's pattern (the entries a sparse ``L`` has) against the closed-form gradient
(:func:`reference_gradient`; it agrees with ``eps = 0`` autograd to 1e-14 on a well-separated
matrix). One thread, float64. The raw eigenvector loss has no finite reference here (the frames'
bottom eigenvalues come within 1e-11..1e-15 of each other), so its rows only show that.

Usage:
    python benchmarks/broadening.py --frames 4 --out results/broadening.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.eigensolvers import image_laplacian  # noqa: E402
from cheeger.linalg import eigsh  # noqa: E402

SIZES = ((23, 30), (46, 60))
EPS = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4, 1e-5)


def _frames(root: Path, count: int) -> list[Path]:
    folder = root / "test"
    files = sorted(folder.glob("*.png"))
    if not files:
        raise SystemExit(f"no frames in {folder} (pass --camvid)")
    step = max(1, len(files) // count)
    return files[::step][:count]


def _bump_filter(lam_k: float, g: torch.Generator):
    centres = torch.rand(6, generator=g, dtype=torch.float64) * lam_k
    widths = (0.1 + torch.rand(6, generator=g, dtype=torch.float64)) * lam_k / 3
    weights = torch.randn(6, generator=g, dtype=torch.float64)

    def h(lam: torch.Tensor) -> torch.Tensor:
        return (weights * torch.exp(-((lam[:, None] - centres) / widths) ** 2)).sum(-1)

    def dh(lam: torch.Tensor) -> torch.Tensor:
        z = (lam[:, None] - centres) / widths
        return (weights * torch.exp(-(z**2)) * (-2 * z / widths)).sum(-1)

    h.derivative = dh
    return h


def reference_gradient(L: torch.Tensor, k: int, G, X, h) -> torch.Tensor:
    """The exact gradient of the filtered loss in closed form (Daleckii-Krein).

    ``f = sum_{i<k} h(l_i) u_i^T M u_i`` with ``M = sym(X G^T)``, so ``A_bar = V Phi V^T`` over
    the whole eigenbasis ``V``: ``Phi_ii = h'(l_i) m_ii``; inside the block
    ``Phi_ij = m_ij (h_i - h_j) / (l_i - l_j)`` (a divided difference, ``h'`` below rounding);
    across its edge ``Phi_ij = m_ij h_i / (l_i - l_j)``. Independent of the code under test: the
    autograd form sums the ``1 / gap`` terms of a pair separately, which could cancel badly at
    the ``1e-15`` gaps of these graphs (on them it agreed with this to the table's 3 digits).
    """
    lam, V = torch.linalg.eigh(L)
    M = X @ G.T
    m = V.T @ (0.5 * (M + M.T)) @ V  # (n, n)
    hk, dk = h(lam[:k]), h.derivative(lam[:k])
    Phi = torch.zeros_like(m)
    li, lj = lam[:k, None], lam[None, :k]
    diff = li - lj
    tiny = diff.abs() <= 1e-12
    dd = torch.where(tiny, 0.5 * (dk[:, None] + dk[None, :]),
                     (hk[:, None] - hk[None, :]) / torch.where(tiny, 1.0, diff))  # fmt: skip
    Phi[:k, :k] = m[:k, :k] * dd
    edge = m[:k, k:] * hk[:, None] / (lam[:k, None] - lam[None, k:])
    Phi[:k, k:], Phi[k:, :k] = edge, edge.T
    return V @ Phi @ V.T


def _gradient(L: torch.Tensor, k: int, eps: float, rule: str, loss: str, G, X, h, Gu):
    A = L.clone().requires_grad_(True)
    lam, U = eigsh(A, k, eps, method="dense", eps_rule=rule)
    if loss == "filtered":
        value = (G * (U @ (h(lam)[:, None] * (U.T @ X)))).sum()
    else:
        value = (Gu * U).sum()
    (grad,) = torch.autograd.grad(value, A)
    return grad


def measure(frames: list[Path], k: int, seed: int) -> list[dict]:
    rows = []
    g = torch.Generator().manual_seed(seed)
    for H, W in SIZES:
        for frame in frames:
            Ls, _ = image_laplacian(str(frame), H, W, "image8")
            pattern = Ls.to_dense() != 0
            L = Ls.to_dense()
            n = L.shape[0]
            scale = float(L.square().sum().div(n).sqrt())
            lam_all = torch.linalg.eigvalsh(L)
            lam = lam_all[: k + 1]
            gaps = lam.diff()
            mean_gap = float((lam[k - 1] - lam[0]) / (k - 1))
            G, X = torch.randn(n, 11, generator=g, dtype=L.dtype), torch.randn(n, 11, generator=g,
                                                                                dtype=L.dtype)
            h = _bump_filter(float(lam[k - 1]), g)
            Gu = torch.randn(n, k, generator=g, dtype=L.dtype)
            for loss in ("filtered", "eigenvector"):
                if loss == "filtered":
                    exact = reference_gradient(L, k, G, X, h)[pattern]
                else:  # ~1 / gap: no finite reference when two bottom eigenvalues nearly meet
                    exact = _gradient(L, k, 0.0, "rms", loss, G, X, h, Gu)[pattern]
                for rule in ("rms", "gap"):
                    for eps in EPS:
                        eps_abs = eps * (scale if rule == "rms" else mean_gap)
                        got = _gradient(L, k, eps, rule, loss, G, X, h, Gu)[pattern]
                        rows.append({
                            "size": f"{H}x{W}", "frame": frame.name, "loss": loss, "rule": rule,
                            "eps": eps, "eps_abs": eps_abs,
                            "rel_error": float((got - exact).norm() / exact.norm()),
                            "min_gap": float(gaps[:k].min()), "mean_gap": mean_gap,
                            "gap_k": float(gaps[k - 1]), "scale": scale,
                        })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camvid", type=Path, default=ROOT.parent / "shared/data/camvid")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import pandas as pd

    rows = measure(_frames(args.camvid, args.frames), args.k, args.seed)
    table = pd.DataFrame(rows)
    spectra = table.groupby("size")[["min_gap", "mean_gap", "gap_k", "scale"]].median()
    print("bottom spectrum (median over frames):")
    print(spectra.to_markdown(floatfmt=".2e"))
    summary = (
        table.groupby(["size", "loss", "rule", "eps"])["rel_error"]
        .agg(["median", "max"])
        .reset_index()
        .sort_values(["size", "loss", "rule", "eps"], ascending=[True, True, True, False])
    )
    print("\nrelative gradient error against the exact backward (median, max over frames):")
    print(summary.to_markdown(index=False, floatfmt=".2e"))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows, indent=1))
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
