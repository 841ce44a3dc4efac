"""Frame rate of the live similarity demo on real CamVid frames, against ARPACK and dense eigh.

Two measurements, one thread, in one run:

1. **End to end**: ``cheeger.demos.live.run_live`` on a folder source of the first ``--frames``
   CamVid test frames (read from disk, 360 x 480), at each working long side: frames per second
   over everything per frame (reading, the seven features, kNN graph, ``L_sym``, our ``eigsh``
   warm-started from the previous frame, cosine similarity, rendering). The goal is >= 5 fps at
   the live working resolution (long side 60: a 45 x 60 grid).
2. **The eigensolve alone**, on the same graphs (built once per frame, outside the timing):
   our ``cheeger.linalg.eigsh`` (default method) warm and cold, scipy's ARPACK
   (``scipy.sparse.linalg.eigsh(which="SA")``, same relative tolerance as ours in float32,
   CSR built from the same COO, conversion included) and the dense ``numpy.linalg.eigh`` of the
   densified ``L_sym`` (only up to ``--dense-max-n`` nodes and on the first ``--dense-frames``
   frames: it is cubic). The table gives each rival's time per frame over ours (warm) and the
   largest eigenvalue difference to ours.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/live.py      # 30 frames, long sides 48 60 120
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/live.py --frames 60 --long-sides 60 \
        --json /tmp/live.json

Timings on a shared machine are noisy; the ratios, measured in the same run, are what to read.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch

from cheeger.demos.features import pixel_features
from cheeger.demos.live import LIVE_LONG_SIDE, run_live
from cheeger.demos.similarity import working_size
from cheeger.demos.sources import FolderSource, read_image
from cheeger.graph import gaussian_affinity, normalized_laplacian
from cheeger.linalg import eigsh

REPO = Path(__file__).resolve().parents[1]
CAMVID = REPO.parent / "shared" / "data" / "camvid" / "test"
GOAL_FPS = 5.0


class _FirstFrames(FolderSource):
    """The folder source limited to its first ``count`` images (read from disk as the demo does)."""

    def __init__(self, folder: Path, count: int) -> None:
        super().__init__(folder)
        self.paths = self.paths[:count]


def _laplacians(frames: list[torch.Tensor], size: tuple[int, int], neighbours: int):
    out = []
    for image in frames:
        f = pixel_features(image, size)
        W = gaussian_affinity(f[None], torch.eye(f.shape[0]), 1.0, "knn", k=neighbours)
        out.append(normalized_laplacian(W))
    return out


def _ours(laplacians, k: int, warm: bool):
    previous, values, start = None, [], time.perf_counter()
    for L in laplacians:
        lam, U = eigsh(L, k, X0=previous if warm else None)
        previous = U[0] if warm else None
        values.append(lam[0].double().numpy())
    return time.perf_counter() - start, values


def _arpack(laplacians, k: int):
    values, start = [], time.perf_counter()
    for L in laplacians:
        L = L.coalesce()
        _, rows, cols = L.indices().numpy()
        n = L.shape[-1]
        A = scipy.sparse.csr_matrix((L.values().numpy(), (rows, cols)), shape=(n, n))
        lam = scipy.sparse.linalg.eigsh(A, k, which="SA", tol=1e-5, return_eigenvectors=False)
        values.append(np.sort(lam).astype(np.float64))
    return time.perf_counter() - start, values


def _dense(laplacians, k: int):
    # numpy's LAPACK threads are not torch's: run the benchmark under OMP_NUM_THREADS=1 (as the
    # usage line does) for a one-core comparison
    values, start = [], time.perf_counter()
    for L in laplacians:
        lam = np.linalg.eigvalsh(L.to_dense()[0].numpy())  # the (n, n) matrix a sparse graph avoids
        values.append(lam[:k].astype(np.float64))
    return time.perf_counter() - start, values


def _gap(values, reference) -> float:
    return max(float(np.abs(a - b).max()) for a, b in zip(values, reference, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, default=CAMVID, help="frames (%(default)s)")
    parser.add_argument("--frames", type=int, default=30, help="frames (%(default)s)")
    parser.add_argument("--long-sides", type=int, nargs="+", default=[48, LIVE_LONG_SIDE, 120])
    parser.add_argument("--k", type=int, default=8, help="eigenpairs (%(default)s)")
    parser.add_argument("--neighbours", type=int, default=10, help="kNN k (%(default)s)")
    parser.add_argument("--dense-max-n", type=int, default=3000,
                        help="skip dense eigh above this many nodes (%(default)s)")  # fmt: skip
    parser.add_argument("--dense-frames", type=int, default=3,
                        help="frames the dense eigh runs on (%(default)s)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch threads (%(default)s)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    source = _FirstFrames(args.folder, args.frames)
    frames = [read_image(path) for path in source.paths]
    height, width = frames[0].shape[1:]
    for side in args.long_sides:
        size = working_size(height, width, side)
        query = (height // 8, width // 2)
        live = run_live(source, query, long_side=side, k=args.k, echo=False)
        rows.append({"long_side": side, "grid": f"{size[0]}x{size[1]}", "what": "end to end",
                     "method": "run_live (ours, warm)", "frames": live.frames,
                     "ms_per_frame": 1e3 * live.seconds / live.frames, "fps": live.fps,
                     "ratio": 1.0, "max_eig_diff": 0.0})  # fmt: skip
        laplacians = _laplacians(frames, size, args.neighbours)
        base, reference = _ours(laplacians, args.k, warm=True)
        solvers = {"eigsh (ours, warm)": (base, reference),
                   "eigsh (ours, cold)": _ours(laplacians, args.k, warm=False),
                   "ARPACK (scipy, SA)": _arpack(laplacians, args.k)}  # fmt: skip
        if size[0] * size[1] <= args.dense_max_n:
            solvers["dense eigh (numpy)"] = _dense(laplacians[: args.dense_frames], args.k)
        per_frame = base / len(frames)
        for method, (seconds, values) in solvers.items():
            count = len(values)
            rows.append({"long_side": side, "grid": f"{size[0]}x{size[1]}",
                         "what": "eigensolve", "method": method, "frames": count,
                         "ms_per_frame": 1e3 * seconds / count, "fps": count / seconds,
                         "ratio": seconds / count / per_frame,
                         "max_eig_diff": _gap(values, reference[:count])})  # fmt: skip

    header = ("long side", "grid", "what", "method", "frames", "ms/frame", "fps",
              "time / ours warm", "max |dλ| vs ours")  # fmt: skip
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for r in rows:
        lines.append(f"{r['long_side']} | {r['grid']} | {r['what']} | {r['method']} | "
                     f"{r['frames']} | {r['ms_per_frame']:.1f} | {r['fps']:.1f} | "
                     f"{r['ratio']:.2f} | {r['max_eig_diff']:.1e}")  # fmt: skip
    print("\n".join(lines))
    live_rows = [r for r in rows if r["what"] == "end to end" and r["long_side"] == LIVE_LONG_SIDE]
    for r in live_rows:
        verdict = "met" if r["fps"] >= GOAL_FPS else "NOT met"
        print(f"goal >= {GOAL_FPS:.0f} fps end to end at long side {LIVE_LONG_SIDE} on "
              f"{args.threads} thread(s): {r['fps']:.1f} fps, {verdict}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
