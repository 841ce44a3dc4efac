"""What a run reports while it trains: ``train_log.txt``, ``history.csv`` and DVCLive curves.

* ``train_log.txt``: human-readable lines (configuration, parameter counts, one line per epoch,
  resumption, errors), appended and flushed as they happen; also echoed on stdout.
* ``history.csv``: one row per finished epoch (train means of every loss term, validation
  metrics, learning rate, seconds), rewritten atomically from the checkpoint's history.
* ``dvclive/``: DVCLive files, ``plots/metrics/train/*.tsv`` per step (loss, each term, its
  weight, learning rate, gradient norm, and for a head with an eigensolver the
  :func:`solver_metrics`) and ``plots/metrics/val/*.tsv`` per epoch (at the step
  that ended it), ``metrics.json`` (latest values) and ``params.yaml``. ``dvc plots show`` and the
  DVC editor extensions read these while training runs.

DVCLive is used as a writer only: ``save_dvc_exp=False`` (no experiment or git commit of its own,
inside ``dvc exp run`` DVC itself records the experiment), ``dvcyaml=None`` (the pipeline's
``dvc.yaml`` declares the plots), and :meth:`Live.end` is never called (inside ``dvc exp run`` it
would ``git add`` files). Steps are set explicitly and the summary is written once per epoch,
because ``Live.next_step`` re-reads every curve on each call (quadratic in the run length). A
resumed run starts DVCLive afresh and replays the checkpoint's history, so curves never hold
the steps of an epoch that was interrupted and redone.

Example:
    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> monitor = RunMonitor(run, echo=False)
    >>> monitor.log("hello")
    >>> monitor.write_history([{"epoch": 1, "val_miou": 0.5}])
    >>> (run / "history.csv").read_text().splitlines()
    ['epoch,val_miou', '1,0.5']
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cheeger.data.io import atomic_write_bytes

__all__ = ["RunMonitor", "diagnostic_means", "diagnostic_metrics", "solver_metrics",
           "solver_totals"]  # fmt: skip


def diagnostic_metrics(internals: Mapping[str, Any]) -> dict[str, float]:
    """A step's graph diagnostics, for the step row (``{}`` for a head without them).

    Args:
        internals: the head's internals; ``"diagnostics"`` is ``(B, 6)`` in the order of
            :data:`cheeger.heads.spectral.DIAGNOSTICS`.

    Returns:
        ``diag_<field>``: the batch's mean (NaN where a field is undefined, e.g. eigenvalues
        of a head without eigenpairs).

    Example:
        >>> import torch
        >>> d = torch.tensor([[0.5, 1, 0.2, 1e-3, 2e-3, 0.5], [0.3, 1, 0.4, 1e-3, 2e-3, 0.5]])
        >>> row = diagnostic_metrics({"diagnostics": d})
        >>> round(row["diag_affinity_cv"], 3), round(row["diag_y_ratio"], 3)
        (0.4, 0.3)
    """
    from cheeger.heads.spectral import DIAGNOSTICS  # the head's layout of the tensor

    if "diagnostics" not in internals:
        return {}
    values = internals["diagnostics"].detach().float().mean(0).cpu().tolist()
    return {f"diag_{n}": v for n, v in zip(DIAGNOSTICS, values, strict=True)}


def diagnostic_means(steps: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Means of the ``diag_*`` fields over step rows, skipping NaN (NaN when none is finite).

    Example:
        >>> diagnostic_means([{"diag_y_ratio": 0.25}, {"diag_y_ratio": 0.5}, {"loss": 1.0}])
        {'diag_y_ratio': 0.375}
    """
    sums: dict[str, list[float]] = {}
    for row in steps:
        for key, value in row.items():
            if key.startswith("diag_"):
                sums.setdefault(key, [])
                if value == value:  # not NaN
                    sums[key].append(float(value))
    return {k: (sum(v) / len(v) if v else float("nan")) for k, v in sums.items()}


def solver_metrics(internals: Mapping[str, Any], complement: Any) -> dict[str, Any]:
    """One training step's eigensolver metrics, for the step row (``{}`` for a head without one).

    Args:
        internals: the head's internals; ``"solver"`` is a ``(5,)`` tensor in the order of
            :data:`cheeger.heads.spectral.SOLVER_FIELDS` (read with one transfer) and
            ``"solver_method"`` the method's name.
        complement: the step's :class:`~cheeger.linalg.ComplementRecord` (the backward's
            complement solves).

    Returns:
        ``solver_<field>`` for each field, ``solver_method`` (a string: kept in the history and
        counted at the end, not plotted) and ``complement_<count>`` (solves, columns, stalled,
        unconverged, worst_residual).

    Example:
        >>> import torch
        >>> from cheeger.linalg import ComplementRecord
        >>> row = solver_metrics({"solver": torch.tensor([2.0, 80, 0, 1, 1]),
        ...                       "solver_method": "lanczos"}, ComplementRecord(1, 32))
        >>> row["solver_matvecs"], row["solver_method"], row["complement_columns"]
        (80.0, 'lanczos', 32)
    """
    from cheeger.heads.spectral import SOLVER_FIELDS  # the head's layout of the tensor

    if "solver" not in internals:
        return {}
    values = internals["solver"].detach().cpu().tolist()  # the step's one small transfer
    row: dict[str, Any] = {f"solver_{n}": v for n, v in zip(SOLVER_FIELDS, values, strict=True)}
    row["solver_method"] = str(internals.get("solver_method", "unknown"))
    for name in ("solves", "columns", "stalled", "unconverged", "worst_residual"):
        row[f"complement_{name}"] = getattr(complement, name)
    return row


def solver_totals(steps: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A run's eigensolver counts from its step rows (``None`` when no step solved anything).

    Returns:
        ``steps``, ``methods`` (steps per method name), ``fallback_steps``, ``unconverged_steps``
        (some graph of the batch did not converge), ``uncertified_steps`` (``None`` when the
        solver gave no certificate), ``restarts`` and ``matvecs`` (``mean``, ``max``,
        ``total``), and ``complement`` (``solves``, ``columns``, ``stalled``, ``unconverged``,
        ``steps_with_stalls``, ``worst_residual``).

    Example:
        >>> rows = [{"solver_method": "lanczos", "solver_restarts": 2.0, "solver_matvecs": 80.0,
        ...          "solver_fallback": 0.0, "solver_converged": 1.0, "solver_certified": 1.0,
        ...          "complement_solves": 1, "complement_columns": 32, "complement_stalled": 3,
        ...          "complement_unconverged": 0, "complement_worst_residual": 1e-3}] * 2
        >>> totals = solver_totals(rows)
        >>> totals["methods"], totals["complement"]["stalled"], totals["uncertified_steps"]
        ({'lanczos': 2}, 6, 0)
    """
    rows = [row for row in steps if "solver_method" in row]
    if not rows:
        return None
    methods: dict[str, int] = {}
    for row in rows:
        methods[row["solver_method"]] = methods.get(row["solver_method"], 0) + 1
    certified = [row["solver_certified"] for row in rows if math.isfinite(row["solver_certified"])]

    def spread(name: str) -> dict[str, float]:
        values = [row[name] for row in rows]
        return {"mean": sum(values) / len(values), "max": max(values), "total": sum(values)}

    def total(name: str) -> int:
        return int(sum(row[f"complement_{name}"] for row in rows))

    return {
        "steps": len(rows),
        "methods": dict(sorted(methods.items())),
        "fallback_steps": sum(row["solver_fallback"] > 0 for row in rows),
        "unconverged_steps": sum(row["solver_converged"] < 1 for row in rows),
        "uncertified_steps": sum(c < 1 for c in certified) if certified else None,
        "restarts": spread("solver_restarts"),
        "matvecs": spread("solver_matvecs"),
        "complement": {
            **{name: total(name) for name in ("solves", "columns", "stalled", "unconverged")},
            "steps_with_stalls": sum(
                row["complement_stalled"] + row["complement_unconverged"] > 0 for row in rows
            ),
            "worst_residual": max(row["complement_worst_residual"] for row in rows),
        },
    }


class RunMonitor:
    """Log file, history table and DVCLive curves of one run folder.

    Args:
        run_dir: the run folder (created if missing).
        live: write DVCLive curves (``False`` for quick library use).
        echo: also print log lines on stdout.
    """

    def __init__(self, run_dir: str | os.PathLike, *, live: bool = True, echo: bool = True):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.echo = echo
        self._live_enabled = live
        self._live = None

    # --- text log -------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        """Append a time-stamped line to ``train_log.txt`` (and print it when echoing)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.run_dir / "train_log.txt", "a", encoding="utf-8") as handle:
            for line in message.splitlines() or [""]:
                handle.write(f"{stamp}  {line}\n")
        if self.echo:
            print(message, flush=True)

    # --- history table --------------------------------------------------------------------------
    def write_history(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rewrite ``history.csv`` atomically; columns in order of first appearance."""
        columns: dict[str, None] = {}
        for row in rows:
            columns.update(dict.fromkeys(row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.run_dir / "history.csv", buffer.getvalue().encode())

    # --- DVCLive --------------------------------------------------------------------------------
    def start_live(self, params: Mapping[str, Any], history: Mapping[str, Sequence[Mapping]]):
        """Open DVCLive (cleaning earlier curves) and replay ``history`` (``steps``, ``epochs``)."""
        if not self._live_enabled:
            return
        from dvclive import Live  # heavy import (DVC), only needed when curves are written

        self._live = Live(dir=str(self.run_dir / "dvclive"), resume=False, save_dvc_exp=False,
                          dvcyaml=None, report=None, monitor_system=False)  # fmt: skip
        self._live.log_params(dict(params))
        for row in history.get("steps", []):
            self.log_step(row, summary=False)
        for row in history.get("epochs", []):
            self.log_epoch(row)

    def log_step(self, row: Mapping[str, Any], *, summary: bool = False) -> None:
        """Log one training step's values as ``train/<name>`` at step ``row["step"]``."""
        if self._live is None:
            return
        self._live.step = int(row["step"])
        for name, value in row.items():
            if (name not in ("step", "epoch") and isinstance(value, int | float)
                    and math.isfinite(value)):  # fmt: skip
                self._live.log_metric(f"train/{name}", float(value))
        if summary:
            self._live.make_summary()

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        """Log one epoch's validation metrics (``val_*`` keys, as ``val/<name>``) and the graph
        diagnostics' epoch means (``diag_*``, as ``diag/<name>``) at the epoch's last step."""
        if self._live is None:
            return
        self._live.step = int(row["step"])
        self._live.log_metric("epoch", int(row["epoch"]))
        for name, value in row.items():
            if not (isinstance(value, int | float) and math.isfinite(value)):
                continue
            for prefix in ("val_", "diag_"):
                if name.startswith(prefix):
                    self._live.log_metric(f"{prefix[:-1]}/{name[len(prefix):]}", float(value))
        self._live.make_summary()

    def log_image(self, name: str, path: str | os.PathLike) -> None:
        """Copy an image (the latest snapshot) into DVCLive's ``plots/images/<name>``."""
        if self._live is not None:
            self._live.log_image(name, str(path))
