"""Benchmark: the bottom ``k`` eigenpairs of image-graph Laplacians, our ``eigsh`` against rivals.

Graphs: ``L_sym`` of 4- and 8-neighbour pixel grids and of a symmetrised 10-NN graph, weights
from a real CamVid frame, ``n = side^2`` from 1,024 to 65,536 (``grid4``, ``grid8``, ``knn``: see
:mod:`benchmarks.graphs`, bandwidth ``--bandwidth-scales`` x the median edge distance), and the
real-image families of issue 11 (:func:`image_laplacian`, always at the median rule):

* ``image8``: 8-neighbour colour graph, ``w = exp(-|c_i - c_j|^2 / 2 s^2) / step length``
  (1 or sqrt 2), ``s^2`` the median of ``|c_i - c_j|^2`` over the edges;
* ``imageknn``: symmetrised 10-NN graph of (colour, position / side) features, same rule;
* ``image8s``: ``image8`` with the fixed ``s = 0.1`` of ``shared/notes/eigensolvers.md`` (the
  median rule's ``s`` is far smaller: at 16,384 nodes its graph falls apart into more than 16
  nearly disconnected pieces; ``s = 0.1`` leaves resolved gaps, the harder case for LOBPCG).
Solvers, each run in a FRESH SUBPROCESS (so its peak resident memory is its own, and a time cap can
stop it) with one thread (``OMP/MKL/OPENBLAS_NUM_THREADS=1`` set before import and
``torch.set_num_threads(1)``):

* ``auto`` (the "cheeger default" column: whatever ``eigsh(method="auto")`` routes to),
  ``lobpcg``, ``lanczos``, ``dense``: :func:`cheeger.linalg.eigsh` with that ``method``
  (``dense`` only for ``n <= 4096``); ``lobpcg`` is the multigrid-preconditioned solver;
* ``lobpcg_fb``: our ``lobpcg`` forward plus the backward of ``sum(lambda) + sum_j (g_j . u_j)^2``
  (a sign-invariant eigenvector loss, fixed random ``g``), ``backward="full"``;
* ``arpack_sa``: ``scipy.sparse.linalg.eigsh(which="SA")``. ARPACK stops when
  ``||r|| <= tol * |theta|``; its ``tol`` is calibrated to ``rtol * ||A|| / |lambda_k|`` (from our
  solution, clamped to [1e-14, 1e-3]) so it is asked for the same ``||A||``-relative accuracy;
* ``arpack_si``: shift-invert, ``sigma`` (default -1e-3), ``tol = rtol``; the LU factorisation is
  inside the timed call;
* ``torch_lobpcg``: ``torch.lobpcg(largest=False, tol=rtol)``, capped by ``--lobpcg-cap`` seconds
  (a timeout is reported as such; sizes beyond a timeout are skipped);
* ``torch_eigh``: dense ``torch.linalg.eigh`` for ``n <= 4096``.

Per run: wall time (median of ``--repeats`` runs for ``n <= 16384``, one run above; the JSON says
how many), the largest relative residual ``||A u - lambda u|| / ||A||_2`` (``||A||_2`` by 100 power
steps, from below, so residuals are if anything overstated), the largest eigenvalue error against
the best reference (dense ``eigh`` where it ran, else the elementwise minimum over the solutions
with residual <= 10 rtol: ARPACK 'SA' misses copies of clustered eigenvalues on ``image8``),
and the peak resident set size of the subprocess (``resource.getrusage`` ``ru_maxrss``: the
whole process, graph included; ``rss_base_mb`` is the level after building the graph). The table
gives times as ratios to ARPACK ``SA`` and to shift-invert measured in the same run.

Usage (from the project root)::

    .venv/bin/python -m benchmarks.eigensolvers --quick
    .venv/bin/python -m benchmarks.eigensolvers --sides 256 --ks 16 --graphs grid4
    .venv/bin/python -m benchmarks.eigensolvers --sides 128,256 --ks 16 --graphs image8,imageknn \
        --solvers auto,lobpcg,arpack_sa,arpack_si --bandwidth-scales 1
    .venv/bin/python -m benchmarks.eigensolvers --batched   # the spectral head's small batches

``--batched`` times, in this process with one thread, a batch of 8 ``image8`` graphs of 8
different frames (23 x 30 and 46 x 60 pixels: the head's stride-8 and stride-4 graphs at
180 x 240), ``k = 16``, float32 and float64, ``eigsh`` with ``lanczos``, ``lobpcg`` and ``auto``
(median of ``--repeats`` timed runs after one warm-up).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FRAME = ROOT.parent / "shared" / "data" / "camvid" / "test" / "0001TP_008550.png"
SOLVERS = (
    "auto",
    "lobpcg",
    "lobpcg_fb",
    "lanczos",
    "dense",
    "arpack_sa",
    "arpack_si",
    "torch_lobpcg",
    "torch_eigh",
)
DENSE_MAX_N = 4096
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
IMAGE_KINDS = ("image8", "imageknn", "image8s")
IMAGE8S_SIGMA = 0.1  # image8s: the fixed bandwidth of shared/notes/eigensolvers.md


# --------------------------------------------------------------------------------------------
# real-image graph families
# --------------------------------------------------------------------------------------------


def _image_edges(frame: str | Path, H: int, W: int, kind: str):
    """Upper edges ``(rows, cols, weights)`` of the ``kind`` graph of ``frame`` at ``H x W``."""
    import numpy as np
    from PIL import Image

    from benchmarks.graphs import _knn_pairs

    path = Path(frame)
    if not path.is_file():
        raise FileNotFoundError(f"benchmark frame {path} does not exist (pass --frame)")
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB").resize((W, H), Image.BILINEAR), dtype=np.float64)
    colour = rgb.reshape(-1, 3) / 255.0
    n = H * W
    if kind in ("image8", "image8s"):
        from cheeger.study.broadening import image8_edges

        return image8_edges(rgb / 255.0, IMAGE8S_SIGMA if kind == "image8s" else None)
    if kind == "imageknn":
        yx = np.stack(np.divmod(np.arange(n), W), axis=1) / max(H, W)
        feats = np.concatenate([colour, yx], axis=1)
        rows, cols = _knn_pairs(feats, 10)
        step = np.ones(rows.shape[0])
    else:
        raise ValueError(f"image graph kind must be one of {IMAGE_KINDS}, got {kind!r}")
    d2 = ((feats[rows] - feats[cols]) ** 2).sum(1)
    s2 = float(np.median(d2))
    if s2 <= 0:
        raise ValueError(f"{path}: median edge distance is 0 at {H} x {W}")
    return rows, cols, np.exp(-d2 / (2 * s2)) / step, s2


def image_laplacian(frames, H: int, W: int, kind: str, dtype=None):
    """``L_sym`` (coalesced COO) of the ``kind`` graph of each frame at ``H x W``: ``(n, n)`` for
    one frame (a path), ``(B, n, n)`` (3 sparse dims) for a list; and a description."""
    import numpy as np
    import torch

    from cheeger.graph import normalized_laplacian

    batched = isinstance(frames, (list, tuple))
    frames = list(frames) if batched else [frames]
    n, idx, vals, info = H * W, [], [], {}
    for b, frame in enumerate(frames):
        rows, cols, w, s2 = _image_edges(frame, H, W, kind)
        r, c = np.concatenate([rows, cols]), np.concatenate([cols, rows])
        idx.append(np.stack([np.full(r.shape[0], b), r, c]))
        vals.append(np.concatenate([w, w]))
        info = {"n": n, "bandwidth": s2**0.5, "weight_min": float(w.min()),
                "weights_below_1e-16": float((w < 1e-16).mean())}  # fmt: skip
    index = torch.from_numpy(np.concatenate(idx, 1))
    values = torch.from_numpy(np.concatenate(vals)).to(dtype or torch.float64)
    Wt = torch.sparse_coo_tensor(index, values, (len(frames), n, n), check_invariants=True)
    L = normalized_laplacian(Wt.coalesce())
    if not batched:
        L = torch.sparse_coo_tensor(L.indices()[1:], L.values(), (n, n), is_coalesced=True)
    info["nnz"] = int(L._nnz())
    return L, info


# --------------------------------------------------------------------------------------------
# worker: one solver on one graph, in its own process
# --------------------------------------------------------------------------------------------


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def _worker(spec: dict) -> dict:
    """Run ``spec["solver"]`` on the graph of ``spec``; return the measurements."""
    import numpy as np
    import torch

    from benchmarks.graphs import GraphSpec, build_graph

    torch.set_num_threads(spec["threads"])
    t0 = time.perf_counter()
    if spec["graph"] in IMAGE_KINDS:
        side = spec["side"]
        L, ginfo = image_laplacian(spec["frame"], side, side, spec["graph"])
    else:
        L, ginfo = build_graph(
            GraphSpec(spec["graph"], spec["side"], spec["frame"], spec["bandwidth_scale"])
        )
    build_s = time.perf_counter() - t0
    n, k, rtol, solver = L.shape[0], spec["k"], spec["rtol"], spec["solver"]
    Lcsr = L.to_sparse_csr()
    # ||A||_2 from below by power iteration (deterministic start)
    x = torch.cos(torch.arange(n, dtype=L.dtype) * 2.399963)[:, None]
    anorm = 0.0
    for _ in range(100):
        y = Lcsr @ x
        anorm = float(y.norm() / x.norm())
        x = y / y.norm()
    base = _rss_mb()
    out = {"build_s": build_s, "anorm": anorm, "rss_base_mb": base, **ginfo}

    def residual(lam, U) -> float:
        lam_t = torch.as_tensor(np.asarray(lam), dtype=L.dtype)
        U_t = torch.as_tensor(np.asarray(U), dtype=L.dtype)
        return float(((Lcsr @ U_t - U_t * lam_t).norm(dim=0) / anorm).max())

    def ours(method: str, grad: bool):
        from cheeger.linalg import eigsh

        A = L.detach().clone().requires_grad_(grad)
        lam, U, info = eigsh(
            A, k, method=method, tol=rtol, check=False, return_info=True, max_restarts=5000
        )
        extra = {"iterations": info.restarts, "matvecs": info.matvecs,
                 "converged": bool(info.converged.all()), "method": info.method}
        if grad:
            g = torch.randn(n, k, dtype=L.dtype, generator=torch.Generator().manual_seed(0))
            (lam.sum() + ((U * g).sum(0) ** 2).sum()).backward()
            extra["grad_finite"] = bool(torch.isfinite(A.grad.coalesce().values()).all())
        return lam.detach().numpy(), U.detach().numpy(), extra

    def arpack(which: str):
        import scipy.sparse as sp
        import scipy.sparse.linalg as sla

        idx = L.indices().numpy()
        A = sp.csr_matrix((L.values().numpy(), (idx[0], idx[1])), shape=(n, n))
        try:
            if which == "SA":
                lam, U = sla.eigsh(A, k, which="SA", tol=spec["arpack_tol"])
            else:
                lam, U = sla.eigsh(A.tocsc(), k, sigma=spec["sigma"], which="LM", tol=rtol)
            converged = True
        except sla.ArpackNoConvergence as err:  # report what it found
            lam, U, converged = err.eigenvalues, err.eigenvectors, False
        order = np.argsort(lam)
        return lam[order], U[:, order], {"converged": converged and len(lam) == k}

    def torch_lobpcg():
        g = torch.Generator().manual_seed(0)
        X = torch.randn(n, k, dtype=L.dtype, generator=g)
        lam, U = torch.lobpcg(L, k=k, X=X, largest=False, tol=rtol, niter=spec["niter"])
        order = torch.argsort(lam)
        return lam[order].numpy(), U[:, order].numpy(), {}

    def torch_eigh():
        lam, U = torch.linalg.eigh(L.to_dense())
        return lam[:k].numpy(), U[:, :k].numpy(), {"converged": True}

    run = {
        "auto": lambda: ours("auto", False),
        "lobpcg": lambda: ours("lobpcg", False),
        "lobpcg_fb": lambda: ours("lobpcg", True),
        "lanczos": lambda: ours("lanczos", False),
        "dense": lambda: ours("dense", False),
        "arpack_sa": lambda: arpack("SA"),
        "arpack_si": lambda: arpack("SI"),
        "torch_lobpcg": torch_lobpcg,
        "torch_eigh": torch_eigh,
    }[solver]
    times = []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        lam, U, extra = run()
        times.append(time.perf_counter() - t0)
    res = residual(lam, U)
    extra.setdefault("converged", res <= 10 * rtol)
    out.update(
        times=times,
        time=statistics.median(times),
        runs=len(times),
        residual_max=res,
        eigenvalues=[float(v) for v in lam],
        peak_rss_mb=_rss_mb(),
        **extra,
    )
    return out


# --------------------------------------------------------------------------------------------
# parent: configurations, subprocesses, references, table, JSON
# --------------------------------------------------------------------------------------------


def _child_env(threads: int) -> dict:
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(threads)
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _launch(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.eigensolvers", "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=_child_env(spec["threads"]), capture_output=True, text=True,
            timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "time": None, "timeout_s": timeout}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        return {"status": "error", "time": None, "error": " | ".join(tail)}
    return {"status": "ok", **json.loads(lines[-1])}


def _applies(solver: str, n: int, k: int) -> bool:
    if solver in ("dense", "torch_eigh"):
        return n <= DENSE_MAX_N
    if solver in ("lobpcg", "lobpcg_fb"):
        return 3 * (k + max(4, k // 4)) <= n
    return True


def _fmt(x, spec=".3g", none="-"):
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _finish_config(records: list[dict]) -> None:
    """Reference eigenvalues, errors and ratios for the records of one configuration.

    The reference is dense ``eigh`` where it ran, else the elementwise minimum of the eigenvalues
    of the solutions with residuals <= 10 rtol (``MISSED`` in the table: an eigenvalue error above
    100 x the residual bound, i.e. a copy of a clustered eigenvalue was missed).
    ``ratio_<rival> = t(rival) / t(solver)`` (> 1: faster than the rival) uses the rival's time
    even when it did not converge (then ``<rival>_converged`` is false); a rival
    that hit its time cap gives ``ratio_<rival>_at_least = cap / t(solver)`` instead.
    """
    ok = [r for r in records if r["status"] == "ok" and len(r.get("eigenvalues", [])) == r["k"]]
    dense = [r for r in ok if r["solver"] in ("torch_eigh", "dense")]
    accurate = [r for r in ok if r["residual_max"] <= 10 * r.get("solver_options", {}).get(
        "rtol", 1e-8)]  # fmt: skip
    if dense:
        ref = min(dense, key=lambda r: r["residual_max"])
        name, ref_values = ref["solver"], ref["eigenvalues"]
    elif accurate:
        # each accurate Ritz value is within its residual of SOME eigenvalue, but a solver that
        # missed a copy of a clustered eigenvalue reports the next one up in its place: the
        # elementwise minimum over accurate solutions is the reference (smallest residual is not)
        name = "min(" + ",".join(r["solver"] for r in accurate) + ")"
        ref_values = [min(vs) for vs in zip(*(r["eigenvalues"] for r in accurate), strict=True)]
    else:
        name, ref_values = None, None
    ran = {r["solver"]: r for r in records}
    ok_ids = {id(r) for r in ok}
    for r in records:
        r["reference"] = name
        if id(r) in ok_ids and ref_values is not None:
            r["eig_err_max"] = max(
                abs(a - b) for a, b in zip(r["eigenvalues"], ref_values, strict=True)
            )
            # more than 100 x the residual bound |theta - lambda| <= res ||A||: a missed eigenvalue
            bound = 100 * max(r["residual_max"], 1e-14) * r.get("anorm", 2.0)
            r["missed"] = r["eig_err_max"] > bound
        for rival in ("arpack_sa", "arpack_si"):
            other = ran.get(rival, {})
            r[f"ratio_{rival}"] = r[f"ratio_{rival}_at_least"] = None
            if not r.get("time"):
                continue
            if other.get("status") == "ok" and other.get("time"):
                r[f"ratio_{rival}"] = other["time"] / r["time"]
                r[f"{rival}_converged"] = bool(other.get("converged", False))
            elif other.get("status") == "timeout":
                r[f"ratio_{rival}_at_least"] = other["timeout_s"] / r["time"]


def _ratio(r: dict, rival: str) -> str:
    if r.get(f"ratio_{rival}") is not None:
        return format(r[f"ratio_{rival}"], ".2f")
    if r.get(f"ratio_{rival}_at_least") is not None:
        return ">" + format(r[f"ratio_{rival}_at_least"], ".0f")
    return "-"


def _print_config(records: list[dict]) -> None:
    r0 = records[0]
    print(
        f"\n{r0['graph']}  side {r0['side']}  n={r0['n']:,}  k={r0['k']}  "
        f"bandwidth x{r0['bandwidth_scale']:g}"
    )
    head = (
        f"{'solver':13s} {'status':8s} {'time s':>9s} {'runs':>4s} {'SA/t':>8s} {'SI/t':>8s} "
        f"{'max res':>9s} {'max |dl|':>9s} {'its':>6s} {'peak MB':>8s} {'via':8s}"
    )
    print(head)
    print("-" * len(head))
    for r in records:
        status = r["status"] if r["status"] != "ok" or r.get("converged", True) else "ok"
        if r["status"] == "ok" and not r.get("converged", True):
            status = "noconv"
        if r["status"] == "ok" and r.get("missed"):
            status = "MISSED"  # small residuals, but an eigenvalue of the bottom k is not there
        print(
            f"{r['solver']:13s} {status:8s} {_fmt(r.get('time'), '.3f'):>9s} "
            f"{_fmt(r.get('runs'), 'd'):>4s} {_ratio(r, 'arpack_sa'):>8s} "
            f"{_ratio(r, 'arpack_si'):>8s} {_fmt(r.get('residual_max'), '.1e'):>9s} "
            f"{_fmt(r.get('eig_err_max'), '.1e'):>9s} {_fmt(r.get('iterations'), 'd'):>6s} "
            f"{_fmt(r.get('peak_rss_mb'), '.0f'):>8s} {r.get('method', ''):8s}"
        )


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=1)
    os.replace(tmp, path)


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sides", type=_ints, default=[32, 64, 128, 256], help="grid sides: n = side^2")
    p.add_argument("--ks", type=_ints, default=[8, 16, 32], help="numbers of eigenpairs")
    p.add_argument(
        "--graphs", default="grid4,grid8,knn", help="grid4, grid8, knn, image8, imageknn, image8s"
    )
    p.add_argument("--solvers", default=",".join(SOLVERS), help=f"subset of {SOLVERS}")
    p.add_argument(
        "--bandwidth-scales", default="1,10",
        help="s = scale x median edge distance (1: the median rule; 10: resolved tiny gaps)",
    )
    p.add_argument("--frame", default=str(DEFAULT_FRAME), help="the CamVid frame")
    p.add_argument("--rtol", type=float, default=1e-8, help="relative residual target")
    p.add_argument("--sigma", type=float, default=-1e-3, help="shift of arpack_si")
    p.add_argument("--arpack-tol", default="calibrated", help="'calibrated' or a number")
    p.add_argument("--repeats", type=int, default=3, help="runs per solver for n <= 16384")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--timeout", type=float, default=900.0, help="cap per solver run, seconds")
    p.add_argument("--lobpcg-cap", type=float, default=60.0, help="cap of torch_lobpcg, seconds")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/eigensolvers.json")
    p.add_argument("--quick", action="store_true", help="a smoke run (about a minute)")
    p.add_argument(
        "--rescore", nargs="+", type=Path,
        help="recompute references and ratios of existing JSON files, merge them into --out",
    )
    p.add_argument("--batched", action="store_true",
                   help="time the spectral head's batches (8 image8 graphs, lanczos vs lobpcg)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.sides, args.ks, args.graphs, args.bandwidth_scales = [32, 64], [8], "grid4", "10"
        args.repeats, args.lobpcg_cap, args.timeout = 1, 15.0, 60.0
        args.solvers = "lobpcg,lobpcg_fb,lanczos,arpack_sa,arpack_si,torch_lobpcg,torch_eigh"
    args.graphs = [g for g in args.graphs.split(",") if g]
    args.solvers = [s for s in args.solvers.split(",") if s]
    args.bandwidth_scales = [float(s) for s in args.bandwidth_scales.split(",") if s]
    bad = sorted(set(args.solvers) - set(SOLVERS))
    if bad:
        p.error(f"unknown solvers {bad}; choose from {SOLVERS}")
    if not Path(args.frame).is_file():
        p.error(f"--frame {args.frame} does not exist")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return 0
    if args.rescore:
        return _rescore(args)
    if args.batched:
        return _batched(args)
    records: list[dict] = []
    timed_out: set[tuple] = set()  # (graph, scale, k, solver) that hit a cap at a smaller size
    started = time.time()
    # run our solver first: ARPACK's calibrated tolerance needs lambda_k
    order = sorted(args.solvers, key=lambda s: (s != "lobpcg", SOLVERS.index(s)))
    for graph in args.graphs:
        # the real-image families are always at the median rule
        for scale in [1.0] if graph in IMAGE_KINDS else args.bandwidth_scales:
            for k in args.ks:
                for side in sorted(args.sides):
                    n = side * side
                    config: list[dict] = []
                    lam_k, anorm = None, 2.0
                    for solver in order:
                        key = (graph, scale, k, solver)
                        base = {"graph": graph, "side": side, "n": n, "k": k,
                                "bandwidth_scale": scale, "solver": solver}
                        if not _applies(solver, n, k):
                            continue
                        if key in timed_out:
                            config.append({**base, "status": "skipped", "time": None})
                            continue
                        if args.arpack_tol == "calibrated":
                            arpack_tol = 1e-8 if lam_k is None else min(
                                1e-3, max(1e-14, args.rtol * anorm / max(abs(lam_k), 1e-300))
                            )
                        else:
                            arpack_tol = float(args.arpack_tol)
                        spec = {
                            "graph": graph, "side": side, "k": k, "solver": solver,
                            "bandwidth_scale": scale, "frame": args.frame, "rtol": args.rtol,
                            "sigma": args.sigma, "arpack_tol": arpack_tol,
                            "threads": args.threads, "niter": 100000,
                            "repeats": args.repeats if n <= 16384 else 1,
                        }
                        cap = args.lobpcg_cap if solver == "torch_lobpcg" else args.timeout
                        out = _launch(spec, cap * spec["repeats"] + 120.0)
                        rec = {**base, **out, "solver_options": {
                            k_: spec[k_] for k_ in ("rtol", "sigma", "arpack_tol", "repeats")}}
                        if rec["status"] == "ok" and rec["time"] > cap:
                            rec["status"] = "over_cap"
                        if rec["status"] in ("timeout", "over_cap"):
                            timed_out.add(key)
                        if solver == "lobpcg" and rec["status"] == "ok":
                            lam_k, anorm = rec["eigenvalues"][-1], rec["anorm"]
                        config.append(rec)
                    if config:
                        _finish_config(config)
                        _print_config(config)
                        records.extend(config)
                        _write_json(args.out, _payload(args, records, started))
    _write_json(args.out, _payload(args, records, started))
    print(f"\nwrote {args.out} ({len(records)} records, {time.time() - started:.0f} s)")
    return 0


def _batched(args: argparse.Namespace) -> int:
    """Seconds per solve of a batch of 8 ``image8`` / ``image8s`` graphs (the spectral head's
    case), at the sizes around ``eigsh``'s ``LOBPCG_MIN_N`` threshold."""
    import torch

    from cheeger.linalg import eigsh

    torch.set_num_threads(args.threads)
    folder = Path(args.frame).parent
    frames = sorted(folder.glob("*.png"))[:: max(1, len(list(folder.glob("*.png"))) // 8)][:8]
    head = (f"{'graph':8s} {'n':>6s} {'dtype':8s} {'method':8s} {'via':8s} {'time s':>8s} "
            f"{'vs lanczos':>10s} {'its':>5s} {'products':>8s} {'max res':>9s} "
            f"{'conv':>5s}")  # fmt: skip
    print(f"batch of {len(frames)} graphs ({folder}), k = 16, {args.threads} thread(s), "
          f"median of {args.repeats} runs after a warm-up\n{head}\n{'-' * len(head)}")  # fmt: skip
    rows = []
    cases = [(kind, H, W) for kind in ("image8", "image8s")
             for H, W in ((12, 15), (23, 30), (32, 32), (46, 60))]  # fmt: skip
    for kind, H, W in cases:
        for dtype in (torch.float32, torch.float64):
            L, _ = image_laplacian(frames, H, W, kind, dtype)
            times = {}
            for method in ("lanczos", "lobpcg", "auto"):
                eigsh(L, 16, method=method, check=False)  # warm-up
                ts = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    _, _, info = eigsh(L, 16, method=method, check=False, return_info=True)
                    ts.append(time.perf_counter() - t0)
                times[method] = statistics.median(ts)
                row = {"graph": kind, "n": H * W, "dtype": str(dtype).split(".")[-1],
                       "method": method,
                       "via": info.method, "time": times[method], "times": ts,
                       "iterations": info.restarts, "matvecs": info.matvecs,
                       "residual_max": float(info.residuals.max()),
                       "converged": bool(info.converged.all())}  # fmt: skip
                rows.append(row)
                print(f"{kind:8s} {row['n']:6d} {row['dtype']:8s} {method:8s} {row['via']:8s} "
                      f"{row['time']:8.4f} {times['lanczos'] / row['time']:10.2f} "
                      f"{row['iterations']:5d} {row['matvecs']:8d} {row['residual_max']:9.1e} "
                      f"{row['converged']!s:>5s}")  # fmt: skip
    out = args.out.with_name(args.out.stem + "_batched.json")
    _write_json(out, {"meta": {"frames": [str(f) for f in frames], "threads": args.threads,
                               "torch": torch.__version__}, "results": rows})  # fmt: skip
    print(f"\nwrote {out}")
    return 0


def _rescore(args: argparse.Namespace) -> int:
    """Regroup the records of ``args.rescore`` by configuration, redo references and ratios."""
    records, metas = [], []
    for path in args.rescore:
        payload = json.loads(Path(path).read_text())
        records.extend(payload["results"])
        metas.append(payload["meta"])
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["graph"], r["bandwidth_scale"], r["k"], r["side"]), []).append(r)
    for key in sorted(groups):
        _finish_config(groups[key])
        _print_config(groups[key])
    payload = _payload(args, records, time.time())
    payload["meta"]["merged_from"] = [str(p) for p in args.rescore]
    payload["meta"]["runs"] = metas
    _write_json(args.out, payload)
    print(f"\nwrote {args.out} ({len(records)} records)")
    return 0


def _payload(args: argparse.Namespace, records: list[dict], started: float) -> dict:
    import scipy
    import torch

    return {
        "meta": {
            "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.eigensolvers",
                                 *sys.argv[1:]]),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "machine": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "torch": torch.__version__,
            "scipy": scipy.__version__,
            "frame": args.frame,
            "rtol": args.rtol,
            "sigma": args.sigma,
            "timing": "wall clock; median of --repeats runs for n <= 16384, one run above",
            "memory": "peak RSS of a fresh subprocess per (graph, k, solver), resource.ru_maxrss",
            "ratios": "ratio_arpack_sa = t(arpack_sa) / t(solver), same for arpack_si",
        },
        "results": records,
    }


if __name__ == "__main__":
    sys.exit(main())
