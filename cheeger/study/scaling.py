"""Eigensolver scaling sweep: run ``benchmarks/eigensolvers.py`` and tabulate time against size.

The benchmark lives outside the package (``benchmarks/`` in the checkout: it times our solvers
against scipy/torch rivals, which the package itself never imports), so it runs as a subprocess
of the interpreter running this code, from the checkout, with the grid sides, ``k``, graph,
solvers and repeats of ``study.scaling``; it runs every (graph, solver, size) in a fresh process
with ``threads`` torch/BLAS threads. Its JSON is kept as written; :func:`scaling_table` turns it
into one row per ``(graph, solver, n)``: ``solver, n, k, seconds`` (the benchmark's median over repeats;
empty when the run failed or hit the time cap, ``status`` says which) and a few diagnostics,
the table the report plots on log-log axes.

The benchmark's JSON (``{"meta": ..., "results": [record, ...]}``) has a record per run with at
least ``solver, n, k, status`` (``ok``, ``timeout``, ``over_cap``, ``error``, ``skipped``) and
``time`` (seconds, ``null`` unless ``ok``).

Example:
    >>> records = [{"solver": "lobpcg", "n": 1024, "k": 16, "status": "ok", "time": 0.1},
    ...            {"solver": "dense", "n": 1024, "k": 16, "status": "timeout", "time": None}]
    >>> scaling_table({"results": records})[["solver", "n", "seconds", "status"]].to_dict("records")
    [{'solver': 'dense', 'n': 1024, 'seconds': nan, 'status': 'timeout'}, {'solver': 'lobpcg', 'n': 1024, 'seconds': 0.1, 'status': 'ok'}]
"""  # noqa: E501

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cheeger.config import ParamsError
from cheeger.data.io import atomic_write_bytes
from cheeger.study.config import study_section

__all__ = ["BENCHMARK", "ScalingConfig", "ScalingError", "run_scaling", "scaling_table"]

#: The benchmark module, run with ``python -m`` from the checkout.
BENCHMARK = "benchmarks.eigensolvers"
_REQUIRED = ("solver", "n", "k", "status", "time")
_KEPT = ("graph", "side", "bandwidth_scale", "residual_max", "converged", "iterations",
         "peak_rss_mb")  # fmt: skip


class ScalingError(RuntimeError):
    """The benchmark failed or wrote JSON this module cannot read (the file is named)."""


@dataclass(frozen=True)
class ScalingConfig:
    """``study.scaling``: what the benchmark sweeps.

    Attributes:
        sides: pixel-grid sides; ``n = side ** 2`` nodes.
        k: eigenpairs per solve.
        graph: one graph family or a list of them, swept side by side: ``grid4``, ``grid8``,
            ``knn`` (benchmarks/graphs.py) and the real-image families ``image8``, ``imageknn``
            (benchmarks/eigensolvers.py, at the median rule) and ``image8s`` (fixed s = 0.1).
        bandwidth_scale: Gaussian bandwidth of ``grid4/grid8/knn`` as a multiple of the median
            edge distance (10: small but resolved gaps; 1: the median rule, nearly disconnected).
        solvers: solver names (empty: all the benchmark knows).
        repeats: timed repetitions per point up to n = 16,384 (the median is reported).
        timeout: seconds; a solver over it at one size skips the larger ones.
        threads: torch/BLAS threads of each benchmark process.
        frame: the image whose colours weight the graph (``None``: the benchmark's default, a
            CamVid frame in ``../shared`` beside the checkout); relative to the params file.
    """

    sides: tuple[int, ...] = (32, 64, 128)
    k: int = 16
    graph: str | tuple[str, ...] = "grid4"
    bandwidth_scale: float = 10.0
    solvers: tuple[str, ...] = ()
    repeats: int = 3
    timeout: float = 300.0
    threads: int = 1
    frame: Path | None = None

    @classmethod
    def from_params(
        cls,
        params: Mapping[str, Any],
        profile: str | None = None,
        *,
        base_dir: str | os.PathLike | None = None,
        origin: str = "params.yaml",
    ) -> ScalingConfig:
        """Build from ``study.scaling`` (and the profile's override), schema-checked;
        a relative ``frame`` is taken relative to ``base_dir`` (the params file's folder).

        Raises:
            ParamsError: ``k`` not below the smallest size.
        """
        section = dict(study_section(params, profile, origin=origin).get("scaling", {}))
        for key in ("sides", "solvers", "graph"):
            if isinstance(section.get(key), list):
                section[key] = tuple(section[key])
        if section.get("frame") is not None:
            frame = Path(os.path.expanduser(section["frame"]))
            section["frame"] = frame if base_dir is None else Path(base_dir) / frame
        config = cls(**section)
        if config.k >= min(config.sides) ** 2:
            raise ParamsError(f"{origin}: study.scaling.k: expected below the smallest size "
                              f"{min(config.sides) ** 2} (side {min(config.sides)} squared), "
                              f"got {config.k}")  # fmt: skip
        return config

    @property
    def graphs(self) -> tuple[str, ...]:
        """The graph families, as a tuple."""
        return (self.graph,) if isinstance(self.graph, str) else tuple(self.graph)

    def arguments(self) -> list[str]:
        """The benchmark's command-line arguments for this sweep."""
        args = ["--sides", ",".join(map(str, self.sides)), "--ks", str(self.k),
                "--graphs", ",".join(self.graphs), "--bandwidth-scales", str(self.bandwidth_scale),
                "--repeats", str(self.repeats), "--timeout", str(self.timeout),
                "--threads", str(self.threads)]  # fmt: skip
        if self.solvers:
            args += ["--solvers", ",".join(self.solvers)]
        if self.frame is not None:
            args += ["--frame", str(Path(self.frame).resolve())]
        return args


def _records(document: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    if not isinstance(document.get("results"), list):
        raise ScalingError("benchmark JSON: expected a list of records under 'results'")
    return document["results"]


def scaling_table(document: Mapping[str, Any]) -> pd.DataFrame:
    """One row per ``(graph, solver, n)``: ``solver, n, k, seconds, status`` and diagnostics.

    Raises:
        ScalingError: a record lacks one of ``solver, n, k, status, time``.
    """
    frame = pd.DataFrame(list(_records(document)))
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing or frame.empty:
        raise ScalingError(f"benchmark JSON: records need {list(_REQUIRED)}; missing {missing}")
    seconds = pd.to_numeric(frame["time"], errors="coerce").where(frame["status"] == "ok")
    table = frame[["solver", "n", "k"]].assign(seconds=seconds, status=frame["status"])
    for column in _KEPT:
        if column in frame.columns:
            table[column] = frame[column]
    keys = ["graph", "solver", "n"] if "graph" in table.columns else ["solver", "n"]
    return table.sort_values(keys, ignore_index=True)


def _check_outcome(document: Mapping[str, Any], path: Path) -> None:
    """A timed-out or capped point is a result; a crashed one, or no point at all, is not."""
    records = _records(document)
    errors = [r for r in records if r.get("status") == "error"]
    if errors:
        first = errors[0]
        raise ScalingError(f"{path}: {len(errors)} of {len(records)} benchmark runs failed, e.g. "
                           f"{first.get('solver')} at n={first.get('n')}: "
                           f"{str(first.get('error', '?'))[-300:]}")  # fmt: skip
    if not any(r.get("status") == "ok" for r in records):
        raise ScalingError(f"{path}: no benchmark run finished within its cap")


def run_scaling(
    config: ScalingConfig,
    out: str | os.PathLike,
    table_path: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Run the benchmark, keep its JSON at ``out``, write the tidy CSV to ``table_path``.

    Args:
        config: the sweep.
        out: benchmark JSON (written by the benchmark, then checked).
        table_path: CSV of :func:`scaling_table`.
        root: the checkout holding ``benchmarks/`` (default: this package's checkout).

    Raises:
        ScalingError: the benchmark is missing, failed, or wrote unreadable JSON.
    """
    root = Path(root) if root is not None else Path(__file__).resolve().parents[2]
    script = root / Path(*BENCHMARK.split(".")).with_suffix(".py")
    if not script.is_file():
        raise ScalingError(f"{script}: the eigensolver benchmark is missing")
    out, table_path = Path(out), Path(table_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", BENCHMARK, *config.arguments(), "--out", str(out.resolve())]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ScalingError(f"{' '.join(command)} failed (status {result.returncode}):\n"
                           f"{result.stderr.strip()[-2000:]}")  # fmt: skip
    try:
        document = json.loads(out.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ScalingError(f"{out}: the benchmark wrote no readable JSON ({error})") from None
    table = scaling_table(document)
    _check_outcome(document, out)
    table_path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, float_format="%.6g")
    atomic_write_bytes(table_path, buffer.getvalue().encode())
    return table
