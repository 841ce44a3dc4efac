"""The unsupervised study: fit the three routes on train, score them on test, write the results.

For ``K = clusters`` (Hungarian) and, if set, ``K = majority_clusters`` (majority vote), each
route is fitted on the training split's nodes and evaluated on the test split
(:func:`~cheeger.unsupervised.evaluate_route`); the NeuralEF eigenfunctions of the Hungarian
``K`` are compared with ``eigsh``'s eigenvectors on held-out (test) batches
(:func:`~cheeger.unsupervised.neuralef_fidelity`). ``<out>/unsupervised.json``:

.. code-block:: text

    {"kmeans" | "eigsh" | "neuralef":
        {"miou", "pixel_accuracy", "boundary_miou", "seconds_per_image", "clusters",
         "matching": "hungarian", "fit_seconds", "iou", "mapping",
         "majority": {the same keys for K = majority_clusters}},
     "neuralef": {..., "principal_angles": {"principal_angles", "median_angle", ...},
                  "history": {...}},
     every pass also has "seeds": {seed: {"miou", "pixel_accuracy", "boundary_miou",
                                         "route_cpu_seconds_per_image"}}, the main fit
                                         (``seed``) first, then each of ``repeat_seeds``,
     "protocol": {...}, "reference": {...}, "settings": {...}}

and the figures ``unsupervised.png`` (image, ground truth and each route's matched clusters) and
``eigenfunctions.png`` (learned eigenfunctions beside eigenvectors), all written atomically.
``progress.json`` (the same, so far) is rewritten after each route and removed at the end, so a
run cut off keeps what it measured; ``unsupervised.json`` appears only when all is done.

Seeds: the main fit uses ``seed`` (its scores sit at the top level, with the timings, figures
and fidelity); with ``repeat_seeds`` every route of every pass is fitted and scored again with
each further seed (k-means++ and sampling, the per-image and dataset k-means, psi's
initialisation, batch order and Gumbel draws all follow the seed), for the spread over seeds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from cheeger.data.io import atomic_write_bytes
from cheeger.data.prepared import load_manifest
from cheeger.unsupervised.config import UnsupervisedConfig
from cheeger.unsupervised.dataset import iter_items, load_split_nodes
from cheeger.unsupervised.evaluate import evaluate_route, neuralef_fidelity
from cheeger.unsupervised.figures import cluster_figure, eigenfunction_figure
from cheeger.unsupervised.routes import EigshRoute, KernelSettings, KMeansRoute, NeuralEFRoute

__all__ = ["REFERENCE", "run_unsupervised"]

#: Seed 001's Cityscapes rows (27 classes, ViT-S, majority vote): a reference on another dataset
#: and backbone, not a target.
REFERENCE = {"dataset": "Cityscapes (27 classes)", "backbone": "ViT-S/16", "source": "seed 001",
             "kmeans_miou": 0.224, "neuralef_miou": 0.282}  # fmt: skip


#: The scores kept per seed for the spread over seeds.
SPREAD_KEYS = ("miou", "pixel_accuracy", "boundary_miou", "route_cpu_seconds_per_image")


def _spread_entry(scores: dict[str, Any]) -> dict[str, float]:
    return {key: scores[key] for key in SPREAD_KEYS}


def _routes(cfg: UnsupervisedConfig, k: int, log: Callable[[str], None]) -> dict[str, Any]:
    kernel = KernelSettings(**cfg.kernel)
    return {
        "kmeans": KMeansRoute(k, cfg.kmeans["sample_per_image"], cfg.kmeans["iters"], cfg.seed),
        "eigsh": EigshRoute(k, kernel, cfg.eigsh["eigenvectors"], cfg.eigsh["segments"],
                            cfg.kmeans["iters"], cfg.seed),
        "neuralef": NeuralEFRoute(k, kernel, log=log, seed=cfg.seed, **cfg.neuralef),
    }  # fmt: skip


def run_unsupervised(
    cfg: UnsupervisedConfig,
    features: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fit, evaluate and write (module docstring). Returns the contents of the JSON."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(data)
    classes, ignore = int(manifest["num_classes"]), manifest.get("ignore_index")
    torch.manual_seed(cfg.seed)
    node_args = {"stride": cfg.stride, "levels": cfg.levels, "limit": cfg.limit}
    start = time.perf_counter()
    feats, cols = load_split_nodes(features, data, "train", **node_args)
    log(f"train nodes {tuple(feats.shape)} in {time.perf_counter() - start:.1f} s")
    plans = [(cfg.clusters, "hungarian")]
    if cfg.majority_clusters:
        plans.append((cfg.majority_clusters, "majority"))
    results: dict[str, dict[str, Any]] = {"kmeans": {}, "eigsh": {}, "neuralef": {}}
    report: dict[str, Any] = {
        **results,
        "protocol": {"split_fitted": "train", "split_scored": "test", "label_size": "native",
                     "hungarian_clusters": cfg.clusters,
                     "majority_clusters": cfg.majority_clusters or None,
                     "matching_fitted_on": "test confusion (the field's protocol)",
                     "timing": "one image at a time from cached taps, taps read not timed, "
                               f"{torch.get_num_threads()} thread(s)"},
        "reference": REFERENCE,
        "settings": {"clusters": cfg.clusters, "majority_clusters": cfg.majority_clusters,
                     "stride": cfg.stride, "levels": list(cfg.levels), "seed": cfg.seed,
                     "repeat_seeds": list(cfg.repeat_seeds),
                     "limit": cfg.limit, "kernel": cfg.kernel, "kmeans": cfg.kmeans,
                     "eigsh": cfg.eigsh, "neuralef": cfg.neuralef, "fidelity": cfg.fidelity},
    }  # fmt: skip

    def save(name: str) -> None:
        atomic_write_bytes(out / name, json.dumps(report, indent=1, default=list).encode())

    def fit(route: Any, segments: torch.Tensor | None) -> None:
        """Fit on the training nodes; an eigsh route given ``segments`` (a fit's
        ``segment_means`` with the same seed: they do not depend on K) skips the eigensolves."""
        if isinstance(route, EigshRoute) and segments is not None:
            route.fit(feats, cols, segment_means=segments)
        else:
            route.fit(feats, cols)

    def score(route: Any, k: int, matching: str, **options: Any) -> dict[str, Any]:
        return evaluate_route(
            route, iter_items(features, data, "test", cfg.limit), clusters=k,
            num_classes=classes, ignore_index=ignore, matching=matching,
            stride=cfg.stride, levels=cfg.levels, **options,
        )  # fmt: skip

    fitted: dict[str, Any] = {}
    for k, matching in plans:
        examples: dict[str, list[torch.Tensor]] = {}
        for name, route in _routes(cfg, k, log).items():
            start = time.perf_counter()
            fit(route, fitted["eigsh"].segment_means if "eigsh" in fitted else None)
            fit_seconds = time.perf_counter() - start
            fit_unconverged = getattr(route, "unconverged", 0)
            if isinstance(route, EigshRoute):  # counted apart: the test images' solves only
                route.unconverged = 0
            log(f"{name} K={k}: fitted in {fit_seconds:.1f} s; evaluating on test")
            scores = score(route, k, matching, log=log)
            scores["fit_seconds"] = fit_seconds
            if isinstance(route, EigshRoute):
                # per-image solves left unconverged: on the fitted (train) images, 0 when the
                # first fit's segments are reused, and on the scored (test) images
                scores["eigsh_unconverged"] = {"fit": fit_unconverged,
                                               "test": route.unconverged}  # fmt: skip
            if isinstance(route, NeuralEFRoute):
                scores["history"] = route.history
            examples[name] = scores.pop("examples")
            scores["seeds"] = {str(cfg.seed): _spread_entry(scores)}  # the spread's first entry
            log(f"{name} K={k} ({matching}): mIoU {scores['miou']:.4f}, pixel accuracy "
                f"{scores['pixel_accuracy']:.4f}, boundary mIoU {scores['boundary_miou']:.4f}, "
                f"{scores['seconds_per_image']:.4f} s per image "
                f"({scores['route_seconds_per_image']:.4f} s in the route)")  # fmt: skip
            if matching == "hungarian":
                report[name].update(scores)
                fitted.setdefault(name, route)
            else:
                report[name]["majority"] = scores
            save("progress.json")  # what is done so far, if the run is cut off
        if matching != "hungarian":
            continue
        test_feats, test_cols = load_split_nodes(features, data, "test", **node_args)
        nef = fitted["neuralef"]
        report["neuralef"]["principal_angles"] = neuralef_fidelity(
            nef.psi, test_feats, test_cols, nef.kernel,
            batch_images=cfg.neuralef["batch_images"], batches=cfg.fidelity["batches"],
            tau_end=cfg.neuralef["tau"][1],
        )  # fmt: skip
        log(f"neuralef fidelity: principal angles (deg) "
            f"{[round(a, 1) for a in report['neuralef']['principal_angles']['principal_angles']]}")
        items = list(iter_items(features, data, "test", min(len(examples["kmeans"]), 3)))
        atomic_write_bytes(out / "unsupervised.png", cluster_figure(
            items, examples, manifest["class_names"], ignore))
        atomic_write_bytes(out / "eigenfunctions.png", eigenfunction_figure(
            items[0], fitted["eigsh"], nef, cfg.stride, cfg.levels))
        save("progress.json")
    for seed in cfg.repeat_seeds:
        repeat = dataclasses.replace(cfg, seed=seed)
        segments = None
        for k, matching in plans:
            for name, route in _routes(repeat, k, log).items():
                fit(route, segments)
                if isinstance(route, EigshRoute):
                    segments = route.segment_means
                scores = score(route, k, matching, keep=0)
                target = report[name] if matching == "hungarian" else report[name]["majority"]
                target["seeds"][str(seed)] = _spread_entry(scores)
                log(f"{name} K={k} ({matching}), seed {seed}: mIoU {scores['miou']:.4f}")
                save("progress.json")
    save("unsupervised.json")
    (out / "progress.json").unlink(missing_ok=True)
    log(f"wrote {out / 'unsupervised.json'}")
    return report
