"""What the null noise edge is on the head's graphs, and how often a null draw falls below it.

For CamVid frames at the camvid profile's resolution (180 x 240) and the head's default graph
(stride 8: a 23 x 30 grid, 8 neighbours, ``d = 16`` unit-length embedding, rank-8 metric,
``sigma = 0.5``), two kinds of embedding per frame:

* ``image``: the frame's normalised RGB through a random 1x1 convolution to 16 channels, pooled to
  the graph and normalised per node (an untrained head's embedding of a real frame);
* ``planted``: a planted partition on the frame's real label layout: per graph node the unit
  class mean of its majority label (random unit vectors, one per class) times ``--amplitude``,
  plus ``N(0, I)`` noise, normalised per node. Its graph has one informative eigenvalue per
  extra label region (the label map's 8-connected components at the graph's resolution).

For each, ``--pool`` null draws (:func:`cheeger.spectral.null_noise_edge`, Gaussian null) give
the null's smallest non-trivial eigenvalue ``nu``. The table reports ``nu``'s relative spread and
its ratio to ``lambda_2`` of the plain (uniform-weight) grid of the same shape, then, for each rule
and number of samples ``P``, the per-draw miss rate ``Pr(nu_new < edge)`` estimated by drawing
``P`` of the pool for the edge and testing the others (``--resamples`` times), and for the
planted embeddings how many non-trivial eigenvalues of the graph lie below the edge against the
number of extra regions.

Rules: ``range`` is ``min nu - (max nu - min nu)`` (the code's rule before this script);
``t95`` the Gaussian prediction bound ``mean - t_{P-1, 0.95} sd sqrt(1 + 1/P)`` (a 5% per-draw miss
rate when ``nu`` is Gaussian).

``--timing`` instead times, on random decoder features of the camvid profile's size (8 images,
32 channels, 180 x 240, the head's defaults), one noise estimate (``P = 2`` with ``range``, the
committed results' setting, and ``P = 4`` with ``t``, the new default) against the head's
training step (forward and backward of the head alone, cached edge), and the head's eval forward
with the per-image edge against the same forward without it (``noise_eval``).

Usage::

    .venv/bin/python benchmarks/noise_floor.py --threads 1
    .venv/bin/python benchmarks/noise_floor.py --threads 1 --timing
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage, stats

import cheeger.heads.spectral as spectral_head
from cheeger.graph import GaussianAffinity, normalized_laplacian
from cheeger.heads import SpectralHead
from cheeger.linalg import eigsh
from cheeger.spectral import noise_floor, null_noise_edge

CAMVID = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"


def _frames(split: str, count: int, size: tuple[int, int]):
    names = sorted((CAMVID / split).glob("*.png"))[:: max(1, 100 // count)][:count]
    for path in names:
        image = Image.open(path).convert("RGB").resize(size[::-1], Image.BILINEAR)
        label = Image.open(CAMVID / f"{split}annot" / path.name).resize(size[::-1], Image.NEAREST)
        yield path.name, np.asarray(image, np.float64) / 255.0, np.asarray(label, np.int64)


def _pooled_labels(label: np.ndarray, stride: int, classes: int = 12) -> np.ndarray:
    onehot = torch.from_numpy(np.eye(classes)[np.minimum(label, classes - 1)]).permute(2, 0, 1)
    return F.avg_pool2d(onehot[None], stride, ceil_mode=True)[0].argmax(0).numpy()  # (h, w)


def _regions(labels: np.ndarray) -> int:
    total = 0
    for c in np.unique(labels):
        total += ndimage.label(labels == c, structure=np.ones((3, 3)))[1]
    return total


def _plain_lambda2(h: int, w: int, affinity: GaussianAffinity) -> float:
    flat = torch.ones(1, affinity.projection.shape[1], h, w, dtype=torch.float64)
    lam, _ = eigsh(normalized_laplacian(affinity(flat)), 2)
    return float(lam[0, 1].detach())


def _edge(nu: np.ndarray, rule: str) -> np.ndarray:
    """Edges of samples ``nu (..., P)``."""
    if rule == "range":
        return nu.min(-1) - (nu.max(-1) - nu.min(-1))
    p = nu.shape[-1]
    t = stats.t.ppf(0.95, p - 1)
    return nu.mean(-1) - t * nu.std(-1, ddof=1) * np.sqrt(1 + 1 / p)


def _seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def timing(repeats: int) -> None:
    """The costs of the noise estimate and of the per-image edge (see the module docstring)."""
    torch.manual_seed(0)
    batch, size = 8, (180, 240)
    head = SpectralHead(32, 11, noise={"num_samples": 4}, noise_every=10**9)
    feats = torch.randn(batch, 32, *size)

    def step() -> None:
        head.train()
        out = head(feats, size)
        (out.logits.square().mean() + out.losses["rayleigh"] + out.losses["bulk"]).backward()
        head.zero_grad()

    def evaluate() -> None:
        head.eval()
        with torch.no_grad():
            head(feats, size)

    g = F.normalize(torch.randn(batch, 16, 23, 30), dim=1)
    old = _seconds(lambda: noise_floor(g, head.affinity, num_samples=2, bound="range"), repeats)
    new = _seconds(lambda: noise_floor(g, head.affinity, num_samples=4), repeats)
    train = _seconds(step, repeats)
    with_edge = _seconds(evaluate, repeats)
    real = spectral_head.noise_floor
    spectral_head.noise_floor = lambda f, *a, **k: torch.zeros(f.shape[0])
    try:
        without = _seconds(evaluate, repeats)
    finally:
        spectral_head.noise_floor = real
    print(f"head training step (cached edge)       {1e3 * train:8.1f} ms")
    print(f"noise estimate P=2 range / P=4 t        {1e3 * old:8.1f} / {1e3 * new:.1f} ms "
          f"(ratio {new / old:.2f}); per step at noise_every=10: {100 * old / 10 / train:.1f}% "
          f"-> {100 * new / 10 / train:.1f}% of the head step")  # fmt: skip
    print(f"head eval forward with / without edge   {1e3 * with_edge:8.1f} / {1e3 * without:.1f} "
          f"ms (ratio {with_edge / without:.2f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--pool", type=int, default=48)
    parser.add_argument("--samples", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--amplitude", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="JSON output (optional)")
    parser.add_argument("--timing", action="store_true", help="time the costs instead")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.timing:
        timing(args.repeats)
        return
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    stride, d = 8, 16
    affinity = GaussianAffinity(d, 8, "grid", radius=1.0, grid_norm="chebyshev", init_sigma=0.5)
    affinity = affinity.double()
    conv = torch.nn.Conv2d(3, d, 1).double()
    class_means = F.normalize(torch.randn(12, d, dtype=torch.float64), dim=1)
    rows, started = [], time.perf_counter()
    for name, image, label in _frames("val", args.frames, (180, 240)):
        rgb = torch.from_numpy(image).permute(2, 0, 1)[None]  # (1, 3, H, W)
        rgb = (rgb - rgb.mean((2, 3), keepdim=True)) / rgb.std((2, 3), keepdim=True)
        with torch.no_grad():
            g_image = F.normalize(F.avg_pool2d(conv(rgb), stride, ceil_mode=True), dim=1)
        labels = _pooled_labels(label, stride)
        h, w = labels.shape
        mean = class_means[torch.from_numpy(labels)].permute(2, 0, 1)[None]  # (1, d, h, w)
        noise = torch.randn(1, d, h, w, dtype=torch.float64)
        g_planted = F.normalize(args.amplitude * mean + noise / d**0.5, dim=1)
        plain = _plain_lambda2(h, w, affinity)
        for kind, g in (("image", g_image), ("planted", g_planted)):
            _, nu = null_noise_edge(g, affinity, num_samples=args.pool, return_samples=True)
            nu = nu[:, 0].numpy()  # (pool,)
            with torch.no_grad():
                lam = eigsh(normalized_laplacian(affinity(g)), 16)[0][0].numpy()
            row = {"frame": name, "kind": kind, "nodes": h * w, "regions": _regions(labels),
                   "nu_mean": float(nu.mean()), "nu_cv": float(nu.std(ddof=1) / nu.mean()),
                   "nu_over_plain": float(nu.mean() / plain), "plain_lambda2": plain,
                   "lambda": lam.tolist()}  # fmt: skip
            for p in args.samples:
                picks = np.argsort(rng.random((args.resamples, args.pool)), -1)
                chosen, rest = nu[picks[:, :p]], nu[picks[:, p:]]  # (R, P), (R, pool - P)
                for rule in ("range", "t95"):
                    edge = _edge(chosen, rule)  # (R,)
                    row[f"miss_{rule}_P{p}"] = float((rest < edge[:, None]).mean())
                    row[f"below_{rule}_P{p}"] = float((lam[None, 1:] < edge[:, None]).sum(1).mean())
                    row[f"gap_{rule}_P{p}"] = float(np.mean((nu.mean() - edge) / nu.mean()))
            rows.append(row)
    print(f"{len(rows)} graphs, {args.pool} null draws each, {time.perf_counter() - started:.0f} s")
    print(f"{'frame':18} {'kind':8} {'regions':>7} {'nu':>9} {'cv':>7} {'nu/plain':>8}  "
          f"lambda_2..5")  # fmt: skip
    for r in rows:
        lam = " ".join(f"{v:.2e}" for v in r["lambda"][1:5])
        print(f"{r['frame']:18} {r['kind']:8} {r['regions']:7d} {r['nu_mean']:9.3e} "
              f"{r['nu_cv']:7.4f} {r['nu_over_plain']:8.4f}  {lam}")  # fmt: skip
    print("\nper-draw miss rate Pr(nu_new < edge), mean over graphs; (mean relative distance of "
          "the edge below mean nu); [planted: non-trivial eigenvalues below the edge / regions-1]")
    for rule in ("range", "t95"):
        for p in args.samples:
            miss = np.mean([r[f"miss_{rule}_P{p}"] for r in rows])
            gap = np.mean([r[f"gap_{rule}_P{p}"] for r in rows])
            below = " ".join(f"{r[f'below_{rule}_P{p}']:.1f}/{r['regions'] - 1}" for r in rows
                             if r["kind"] == "planted")  # fmt: skip
            print(f"  {rule:6} P={p:<3d} miss {miss:6.3f}  edge {100 * gap:5.2f}% below mean nu  "
                  f"[{below}]")  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
