"""A live dashboard of one training run: curves, the latest snapshot, solver statistics.

``cheeger demo dashboard RUN`` serves a page on ``127.0.0.1`` (by default) that polls the run
folder every few seconds while ``cheeger train`` writes it, with no other dependency than the
standard library on the server and no script from the network in the page (it draws its own
SVG), so it works offline and behind a cluster's SSH tunnel. It reads what training already
writes (:mod:`cheeger.training.monitor`): the DVCLive curves ``dvclive/plots/metrics/**/*.tsv``
(the same files ``dvc plots show`` and the DVC VS Code extension read), ``history.csv`` when
DVCLive was off, the newest ``snapshots/epoch_NNN.png``, ``final.json`` and the log's tail.

The server answers three kinds of GET and nothing else:

* ``/``: the page (:data:`PAGE`, from ``dashboard.html`` beside this module);
* ``/state.json``: the run's curves and status, built by :func:`run_state`;
* ``/files/<path>``: a file of the run folder; a path that resolves outside it (``..``, an
  absolute path, a symlink out) is refused with 404, as is anything not a regular file.

Curves are grouped into panels: ``losses`` (``train/*`` except the learning rate, gradient norm
and loss weights), ``validation`` (``val/miou`` and ``val/boundary_miou``), ``optimiser``
(learning rate, gradient norm) and ``solver`` (any curve with one of the words ``solver``,
``complement``, ``eigsh``, ``eigen...``, ``lanczos``, ``lobpcg``, ``iterations``, ``restarts``,
``residual(s)`` in its name: the training loop's ``train/solver_*`` forward and
``train/complement_*`` backward statistics), drawn one small chart per curve since their scales
differ (counts of products, fractions, residuals), as are the optimiser's two. A run without
them (the conv head) says so.

Example:
    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> (run / "history.csv").write_text("epoch,step,train_loss,val_miou\\n1,4,0.9,0.3\\n")
    43
    >>> state = run_state(run)
    >>> state["status"], state["panels"]["validation"]["val/miou"]
    ('running', [[4.0, 0.3]])
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import threading
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from cheeger.demos.errors import DemoError

__all__ = ["PAGE", "DashboardServer", "resolve_run_file", "run_state"]

PAGE = (Path(__file__).with_name("dashboard.html")).read_text(encoding="utf-8")
# whole words of a curve's name ("eig" alone would catch "rayleigh")
SOLVER_WORDS = re.compile(r"(^|[/_])(solver|complement|eigsh|eigen\w*|lanczos|lobpcg|iterations|"
                          r"restarts|residuals?)($|[/_])")
OPTIMISER = ("train/lr", "train/grad_norm")
VALIDATION = ("val/miou", "val/boundary_miou")
_TYPES = {".png": "image/png", ".json": "application/json", ".tsv": "text/plain; charset=utf-8",
          ".csv": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8"}  # fmt: skip


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _read_tsv(path: Path) -> list[list[float]]:
    """``step<TAB>...<TAB>value`` rows of a DVCLive curve -> ``[[step, value], ...]``."""
    points = []
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines(), delimiter="\t"))
    except OSError:
        return points  # a file being replaced right now: the next poll reads it
    if not rows or "step" not in rows[0]:
        return points
    step = rows[0].index("step")
    for row in rows[1:]:
        if len(row) == len(rows[0]):
            x, y = _number(row[step]), _number(row[-1])
            if x is not None and y is not None:
                points.append([x, y])
    return points


def _curves(run: Path) -> dict[str, list[list[float]]]:
    """Every curve of the run: DVCLive's files, else the columns of ``history.csv``."""
    root = run / "dvclive" / "plots" / "metrics"
    curves = {path.relative_to(root).with_suffix("").as_posix(): _read_tsv(path)
              for path in sorted(root.rglob("*.tsv"))} if root.is_dir() else {}  # fmt: skip
    if curves or not (run / "history.csv").is_file():
        return curves
    try:
        rows = list(csv.DictReader((run / "history.csv").read_text(encoding="utf-8").splitlines()))
    except OSError:
        return curves
    for row in rows:
        x = _number(row.get("step", row.get("epoch", "")))
        for name, text in row.items():
            y = _number(text)
            if x is None or y is None or name in ("epoch", "step", "seconds"):
                continue
            prefix, _, rest = name.partition("_")
            key = f"{prefix}/{rest}" if prefix in ("train", "val") else name
            curves.setdefault(key, []).append([x, y])
    return curves


def _panel(name: str) -> str | None:
    if SOLVER_WORDS.search(name.lower()):
        return "solver"
    if name in VALIDATION:
        return "validation"
    if name in OPTIMISER:
        return "optimiser"
    if name.startswith("train/") and not name.startswith("train/weight_"):
        return "losses"
    return None


def run_state(run: str | os.PathLike) -> dict[str, Any]:
    """What the page shows: status, curves by panel, latest snapshot, final summary, log tail."""
    run = Path(run)
    panels: dict[str, dict[str, list[list[float]]]] = {
        "losses": {}, "validation": {}, "optimiser": {}, "solver": {}}  # fmt: skip
    for name, points in _curves(run).items():
        panel = _panel(name)
        if panel is not None and points:
            panels[panel][name] = points
    snapshots = sorted((run / "snapshots").glob("epoch_*.png"))
    final = None
    if (run / "final.json").is_file():
        try:
            final = json.loads((run / "final.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            final = None
    log = run / "train_log.txt"
    tail = log.read_text("utf-8", errors="replace").splitlines()[-8:] if log.is_file() else []
    return {
        "run": run.name or str(run), "status": "finished" if final is not None else "running",
        "panels": panels,
        "snapshot": f"snapshots/{snapshots[-1].name}" if snapshots else None,
        "snapshot_version": snapshots[-1].stat().st_mtime_ns if snapshots else 0,
        "best": final.get("best") if final else None, "log": tail,
    }  # fmt: skip


def resolve_run_file(run: Path, relative: str) -> Path | None:
    """The regular file ``relative`` names inside ``run``, or ``None`` if it is outside or absent.

    Example:
        >>> resolve_run_file(Path("/tmp"), "../etc/passwd") is None
        True
    """
    root = run.resolve()
    if not relative or relative.startswith("/") or "\\" in relative or "\x00" in relative:
        return None
    target = (root / relative).resolve()  # follows symlinks: one pointing out is refused
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


class _Handler(BaseHTTPRequestHandler):
    server_version = "cheeger-dashboard"

    def __init__(self, *args, run: Path, **kwargs) -> None:
        self.run = run
        super().__init__(*args, **kwargs)

    def _send(self, body: bytes, kind: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # http.server's name
        path = unquote(urlsplit(self.path).path)
        if path in ("/", "/index.html"):
            self._send(PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/state.json":
            self._send(json.dumps(run_state(self.run)).encode(), "application/json")
        elif path.startswith("/files/") and (target := resolve_run_file(self.run, path[7:])):
            kind = _TYPES.get(target.suffix.lower(), "application/octet-stream")
            self._send(target.read_bytes(), kind)
        else:
            self._send(b"not found\n", "text/plain", HTTPStatus.NOT_FOUND)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # polling every few seconds would flood the terminal


class DashboardServer:
    """The dashboard of ``run`` served on ``host:port`` (port 0: any free port).

    Use :meth:`serve_forever` from the CLI, or :meth:`start` / :meth:`stop` (a background thread)
    in tests and notebooks.

    Raises:
        DemoError: the run folder does not exist, or the port cannot be bound.
    """

    def __init__(self, run: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000):
        self.run = Path(run)
        if not self.run.is_dir():
            raise DemoError(f"dashboard: run folder {self.run} not found")
        try:
            self.httpd = ThreadingHTTPServer((host, port), partial(_Handler, run=self.run))
        except OSError as exc:
            raise DemoError(f"dashboard: cannot listen on {host}:{port} ({exc})") from exc
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def serve_forever(self) -> None:
        """Serve until interrupted."""
        try:
            self.httpd.serve_forever()
        finally:
            self.httpd.server_close()

    def start(self) -> DashboardServer:
        """Serve from a daemon thread."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the background thread and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join()
