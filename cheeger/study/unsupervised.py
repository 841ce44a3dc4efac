"""The report's unsupervised section: the three routes of ``cheeger unsupervised`` side by side.

``results/<profile>/unsupervised/unsupervised.json`` (:mod:`cheeger.unsupervised.run`, profiles
with a feature cache) holds, per route (``kmeans``, ``eigsh``, ``neuralef``), the scores of the
K = C Hungarian pass at the top level and the K > C majority pass under ``majority``. This
module tables them, says what the numbers are (the field's protocol: matching fitted on the
scored split's confusion), and gives ``metrics.json`` its ``unsupervised`` block: route ->
``miou``, ``pixel_accuracy``, ``seconds_per_image`` (the K = C pass).

Example:
    >>> report = {"kmeans": {"miou": 0.2, "pixel_accuracy": 0.5, "boundary_miou": 0.1,
    ...                      "seconds_per_image": 0.03, "route_cpu_seconds_per_image": 0.002,
    ...                      "clusters": 11, "matching": "hungarian", "images": 2}}
    >>> unsupervised_metrics(report)
    {'kmeans': {'miou': 0.2, 'pixel_accuracy': 0.5, 'seconds_per_image': 0.03}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = [
    "ROUTES",
    "seed_spread",
    "unsupervised_metrics",
    "unsupervised_table",
    "unsupervised_text",
]

#: The routes, in the order the report shows them.
ROUTES = ("kmeans", "eigsh", "neuralef")
_COLUMNS = ("miou", "pixel_accuracy", "boundary_miou", "seconds_per_image",
            "route_seconds_per_image", "route_cpu_seconds_per_image")  # fmt: skip
_SPREAD = ("seeds", "miou_mean", "miou_sd")


def _passes(report: Mapping[str, Any]):
    """(route, scores) of every pass present: the K = C pass, then the majority pass."""
    for route in ROUTES:
        scores = report.get(route) or {}
        if "miou" in scores:
            yield route, scores
        if "miou" in (scores.get("majority") or {}):
            yield route, scores["majority"]


def seed_spread(scores: Mapping[str, Any], key: str = "miou") -> tuple[int, float, float]:
    """``(seeds, mean, sd)`` of ``key`` over a pass's ``seeds`` (sd with ``n - 1``; NaN for one
    seed); a report without ``seeds`` counts its one score.

    Example:
        >>> seed_spread({"miou": 0.2, "seeds": {"0": {"miou": 0.2}, "1": {"miou": 0.3}}})
        (2, 0.25, 0.07071067811865474)
    """
    values = [entry[key] for entry in (scores.get("seeds") or {}).values()] or [scores[key]]
    series = pd.Series(values, dtype=float)
    return len(values), float(series.mean()), float(series.std(ddof=1))


def unsupervised_table(report: Mapping[str, Any]) -> pd.DataFrame:
    """One row per route and pass: ``route, clusters, matching, images``, the main fit's scores
    and the mIoU's spread over seeds (``seeds``, ``miou_mean``, ``miou_sd``)."""
    rows = [{"route": route, "clusters": s.get("clusters"), "matching": s.get("matching"),
             "images": s.get("images"), **{c: s.get(c) for c in _COLUMNS},
             **dict(zip(_SPREAD, seed_spread(s), strict=True))}
            for route, s in _passes(report)]  # fmt: skip
    return pd.DataFrame(rows, columns=["route", "clusters", "matching", "images", *_COLUMNS,
                                       *_SPREAD])  # fmt: skip


def unsupervised_metrics(report: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """``metrics.json``'s block: route -> miou, pixel_accuracy, seconds_per_image (K = C)."""
    return {route: {k: report[route][k] for k in ("miou", "pixel_accuracy", "seconds_per_image")}
            for route in ROUTES if "miou" in (report.get(route) or {})}  # fmt: skip


def unsupervised_text(report: Mapping[str, Any]) -> str:
    """What the section's numbers are, and the goals of the NeuralEF route in numbers."""
    protocol = report.get("protocol", {})
    lines = [
        "Frozen features, no labels in fitting: k-means on the node features, the per-image "
        "eigensolver route (the kernel's bottom eigenvectors from our `eigsh`, as Deep Spectral "
        "Methods) and NeuralEF (a network psi learns the kernel's eigenfunctions; no eigensolve "
        f"at test time). Fitted on `{protocol.get('split_fitted', 'train')}`, scored on "
        f"`{protocol.get('split_scored', 'test')}` at the labels' native size; clusters matched "
        f"to classes on {protocol.get('matching_fitted_on', 'the scored split')} (Hungarian for "
        "K = C, majority vote for K > C), as the field reports them. Seconds per image: "
        f"{protocol.get('timing', 'one image at a time')}; `route_cpu` is the CPU time of the "
        "route alone (kernel, eigensolve or psi, clustering), which the machine's load does not "
        "inflate.",
    ]
    eigsh, nef = report.get("eigsh") or {}, report.get("neuralef") or {}
    if "miou" in eigsh and "miou" in nef:
        key = "route_cpu_seconds_per_image"
        speed = f"{eigsh[key] / nef[key]:.1f}x" if nef.get(key) else "n/a"
        (n_nef, nef_mean, nef_sd), (n_eig, eig_mean, eig_sd) = seed_spread(nef), seed_spread(eigsh)
        if min(n_nef, n_eig) > 1:  # the means over seeds first: one seed can mislead
            miou = (f"{nef_mean:.3f} +- {nef_sd:.3f} vs {eig_mean:.3f} +- {eig_sd:.3f} over "
                    f"{n_nef} and {n_eig} seeds ({100 * (nef_mean - eig_mean):+.1f} points of the "
                    f"means; the main fit's {nef['miou']:.3f} vs {eigsh['miou']:.3f})")  # fmt: skip
        else:
            miou = (f"{nef['miou']:.3f} vs {eigsh['miou']:.3f} "
                    f"({100 * (nef['miou'] - eigsh['miou']):+.1f} points)")  # fmt: skip
        lines.append(
            f"\nNeuralEF against the eigensolver route at K = {nef.get('clusters')}: mIoU "
            f"{miou}; goal: within 2 points or better. Route CPU time per image (main fit) "
            f"{nef.get(key, float('nan')):.4f} s vs {eigsh.get(key, float('nan')):.4f} s "
            f"({speed} faster; goal: 10x)."
        )  # fmt: skip
    spread = [(route, s) for route, s in _passes(report) if seed_spread(s)[0] > 1]
    if spread:
        parts = []
        for route, s in spread:
            _, mean, sd = seed_spread(s)
            parts.append(f"{route} K = {s.get('clusters')} {mean:.3f} +- {sd:.3f}")
        lines.append(
            f"Over {seed_spread(spread[0][1])[0]} seeds (every route refitted; mIoU mean +- sd, "
            f"the main fit's scores above are one of them): {'; '.join(parts)}."
        )  # fmt: skip
    angles = (nef.get("principal_angles") or {}).get("principal_angles")
    if angles:
        lines.append(
            f"Fidelity of the learned eigenfunctions on held-out test images: principal angles to "
            f"`eigsh`'s eigenvectors of the same kernel {min(angles):.1f}..{max(angles):.1f} "
            f"degrees (median {nef['principal_angles']['median_angle']:.1f})."
        )  # fmt: skip
    reference = report.get("reference")
    if reference:
        lines.append(
            f"\nReference on another dataset and backbone ({reference['source']}: "
            f"{reference['dataset']}, {reference['backbone']}, majority vote): k-means "
            f"{reference['kmeans_miou']:.3f}, NeuralEF {reference['neuralef_miou']:.3f} mIoU."
        )  # fmt: skip
    return " ".join(lines[:1]) + "\n" + "\n".join(lines[1:])
