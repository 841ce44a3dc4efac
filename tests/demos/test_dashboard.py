"""The run dashboard: state of a real (tiny) training run, only the run's files served, and the
page rendered by a real headless Chromium (curves in the DOM, a non-blank screenshot)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from cheeger.config import DataConfig, EvaluateConfig, ModelConfig, TrainConfig
from cheeger.data import prepare
from cheeger.demos.dashboard import DashboardServer, resolve_run_file, run_state
from cheeger.demos.errors import DemoError
from cheeger.training import RunSpec, train

TINY_PARAMS = {
    "profile": "tiny",
    "profiles": {"tiny": {"dataset": "synthetic", "root": None, "resolution": [32, 40]}},
    "data": {"synthetic": {"seed": 3, "size": [32, 40],
                           "splits": {"train": 6, "val": 3, "test": 3}}},
}  # fmt: skip
EPOCHS, STEPS_PER_EPOCH = 3, 2
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


@pytest.fixture(scope="module")
def run_and_server(tmp_path_factory):
    """A tiny spectral-head run (DVCLive on) trained while its dashboard is being served.

    Yields the run folder, the server and the state the server reported before training.
    """
    root = tmp_path_factory.mktemp("dashboard")
    data = root / "prepared"
    prepare(DataConfig.from_params(TINY_PARAMS), data)
    run = root / "run"
    run.mkdir()
    server = DashboardServer(run, port=0).start()
    before = json.loads(_get(server.url + "state.json")[1])
    train(RunSpec(
        data=data, out=run, head="spectral", seed=0,
        model=ModelConfig(depth=2, width=4, norm="batch"),
        train=TrainConfig(epochs=EPOCHS, batch_size=3, lr=0.01, lr_warmup_epochs=0.5,
                          device="cpu"),
        evaluate=EvaluateConfig(batch_size=2), progress=False, echo=False, live=True,
    ))  # fmt: skip
    yield run, server, before
    server.stop()


def test_state_follows_the_run(run_and_server):
    run, server, before = run_and_server
    assert before["status"] == "running" and before["snapshot"] is None
    assert not any(before["panels"].values())
    state = json.loads(_get(server.url + "state.json")[1])
    assert state == json.loads(json.dumps(run_state(run)))
    assert state["status"] == "finished"
    losses, val = state["panels"]["losses"], state["panels"]["validation"]
    assert len(losses["train/loss"]) == EPOCHS * STEPS_PER_EPOCH
    assert {"train/ce", "train/rayleigh"} <= set(losses)
    assert not any(name.startswith("train/weight_") for name in losses)
    assert set(val) == {"val/miou", "val/boundary_miou"}
    assert [step for step, _ in val["val/miou"]] == [2.0, 4.0, 6.0]
    assert set(state["panels"]["optimiser"]) == {"train/lr", "train/grad_norm"}
    solver = state["panels"]["solver"]
    assert {"train/solver_restarts", "train/solver_matvecs", "train/complement_solves"} <= set(
        solver)
    assert all(len(points) == EPOCHS * STEPS_PER_EPOCH for points in solver.values())
    assert not set(solver) & set(losses)
    assert state["snapshot"] == f"snapshots/epoch_{EPOCHS:03d}.png"
    assert state["best"]["metric"] and state["log"]


def test_history_csv_is_the_fallback_without_dvclive(run_and_server, tmp_path):
    run = run_and_server[0]
    shutil.copy(run / "history.csv", tmp_path / "history.csv")
    state = run_state(tmp_path)
    assert [step for step, _ in state["panels"]["validation"]["val/miou"]] == [2.0, 4.0, 6.0]
    assert "train/loss" in state["panels"]["losses"]


def test_serves_only_the_run_folder(run_and_server, tmp_path_factory):
    run, server, _ = run_and_server
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text("secret")
    (run / "link.txt").symlink_to(outside)
    assert _get(server.url + "files/history.csv") == (200, (run / "history.csv").read_bytes())
    assert _get(server.url + f"files/snapshots/epoch_{EPOCHS:03d}.png")[0] == 200
    escape = "files/" + os.path.relpath(outside, run)  # ../../outside0/secret.txt: it exists
    assert (run / escape[6:]).resolve().is_file()
    for path in (escape, escape.replace("..", "%2e%2e"), "files//etc/passwd", f"files/{outside}",
                 "files/link.txt", "files/snapshots", "files/", "nothing"):  # fmt: skip
        assert _get(server.url + path)[0] == 404, path
    assert resolve_run_file(run, "link.txt") is None
    request = urllib.request.Request(server.url + "state.json", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=30)
    assert server.url.startswith("http://127.0.0.1:")


def test_bad_run_or_port_is_named(run_and_server, tmp_path):
    with pytest.raises(DemoError, match=r"run folder .* not found"):
        DashboardServer(tmp_path / "missing")
    port = int(run_and_server[1].url.rsplit(":", 1)[1].strip("/"))
    with pytest.raises(DemoError, match=f"cannot listen on 127.0.0.1:{port}"):
        DashboardServer(tmp_path, port=port)


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CHEEGER_REQUIRE_BROWSER"):
            pytest.fail("chromium not found and CHEEGER_REQUIRE_BROWSER is set (.ci/run installs "
                        "it with apt-get install -y chromium)")  # fmt: skip
        pytest.skip("chromium not installed (apt-get install -y chromium); set "
                    "CHEEGER_REQUIRE_BROWSER=1 to make this a failure")  # fmt: skip
    return path


def _browser(chromium: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    # virtual time lets the page's fetch and drawing finish before the DOM is dumped
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               "--virtual-time-budget=10000", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)


def test_page_renders_the_curves_in_a_real_browser(run_and_server, chromium, tmp_path):
    server = run_and_server[1]
    dom = _browser(chromium, tmp_path, "--dump-dom", server.url).stdout
    assert 'data-loaded="yes"' in dom and 'data-status="finished"' in dom
    for name, points in (("train/loss", EPOCHS * STEPS_PER_EPOCH), ("val/miou", EPOCHS),
                         ("val/boundary_miou", EPOCHS), ("train/grad_norm", 6)):  # fmt: skip
        assert f'data-series="{name}" data-points="{points}"' in dom, name
    # every plotted point inside its chart's 520 x 220 view box: the axes span the data
    paths = re.findall(r'<path d="([^"]+)"[^>]*class="series"', dom)
    assert len(paths) >= 10
    for d in paths:
        pairs = re.findall(r"([\d.\-]+),([\d.\-]+)", d)
        xy = np.array(pairs, dtype=float)  # (points, 2)
        assert (xy >= 0).all() and (xy[:, 0] <= 520).all() and (xy[:, 1] <= 220).all(), d
    assert f'src="files/snapshots/epoch_{EPOCHS:03d}.png' in dom
    assert 'data-series="train/solver_matvecs" data-points="6"' in dom


def test_screenshot_is_not_blank(run_and_server, chromium, tmp_path):
    server = run_and_server[1]
    shot = tmp_path / "dashboard.png"
    _browser(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1200,900", server.url)
    with Image.open(shot) as image:
        assert image.size == (1200, 900)
        pixels = np.asarray(image.convert("RGB"))
    # curves in several colours and a snapshot: many distinct colours, not a blank page
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200
    assert (np.abs(pixels.astype(int) - [31, 119, 180]).sum(-1) < 30).sum() > 100  # blue curve
